// Timestamps as shops export them: unix seconds, or ISO-8601 dates and date-times
// ("2017-07-01", "2017-07-01 12:30:27", "2017-07-01T12:30:27.5Z", "...+02:00"), all
// converted to UTC unix seconds without the C library's locale and time-zone state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/enum_names.hpp"

namespace ml {

// data.time_format: how timestamp cells are written; kAuto accepts both.
enum class TimeFormat { kAuto, kUnix, kIso8601 };

template <>
struct EnumNames<TimeFormat> {
  static constexpr EnumName<TimeFormat> entries[] = {
      {TimeFormat::kAuto, "auto"}, {TimeFormat::kUnix, "unix"}, {TimeFormat::kIso8601, "iso8601"}};
};

// Unix seconds, or nullopt when `text` is not a valid timestamp of the given format.
std::optional<std::int64_t> parse_timestamp(std::string_view text, TimeFormat format);

// "YYYY-MM-DDTHH:MM:SS" in UTC.
std::string format_iso8601(std::int64_t unix_seconds);

// Days since 1970-01-01 of a proleptic Gregorian date and back (Howard Hinnant's algorithms,
// "chrono-Compatible Low-Level Date Algorithms", howardhinnant.github.io/date_algorithms.html).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d);
struct CivilDate {
  std::int64_t year;
  unsigned month;  // 1-12
  unsigned day;    // 1-31
};
CivilDate civil_from_days(std::int64_t days);

// Days since 1970-01-01 of a strict "YYYY-MM-DD" date (a real calendar day), else nullopt.
std::optional<std::int64_t> parse_iso_date(std::string_view text);

}  // namespace ml
