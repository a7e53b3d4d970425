// Timestamps as shops export them: unix seconds, milliseconds (JavaScript, Java, Kafka),
// microseconds or nanoseconds, or ISO-8601 dates and date-times ("2017-07-01",
// "2017-07-01 12:30:27", "2017-07-01T12:30:27.5Z", "...+02:00"), all converted to UTC unix
// seconds without the C library's locale and time-zone state, and the range of times a log can
// plausibly hold.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/enum_names.hpp"

namespace ml {

// data.time_format: how timestamp cells are written. kAuto reads ISO-8601 and unix numbers, each
// number in the unit its magnitude gives (unix_unit_by_magnitude).
enum class TimeFormat { kAuto, kUnix, kUnixMs, kUnixUs, kUnixNs, kIso8601 };

template <>
struct EnumNames<TimeFormat> {
  static constexpr EnumName<TimeFormat> entries[] = {
      {TimeFormat::kAuto, "auto"},      {TimeFormat::kUnix, "unix"},
      {TimeFormat::kUnixMs, "unix_ms"}, {TimeFormat::kUnixUs, "unix_us"},
      {TimeFormat::kUnixNs, "unix_ns"}, {TimeFormat::kIso8601, "iso8601"}};
};

// How one timestamp was read: a number's unit, or an ISO-8601 text. Named by the time format
// that reads it so ("unix_ms"), so a report of what auto decided names the setting to pin it.
enum class TimeReading { kUnixSeconds, kUnixMs, kUnixUs, kUnixNs, kIso8601 };

template <>
struct EnumNames<TimeReading> {
  static constexpr EnumName<TimeReading> entries[] = {{TimeReading::kUnixSeconds, "unix"},
                                                      {TimeReading::kUnixMs, "unix_ms"},
                                                      {TimeReading::kUnixUs, "unix_us"},
                                                      {TimeReading::kUnixNs, "unix_ns"},
                                                      {TimeReading::kIso8601, "iso8601"}};
};

// For people: "unix seconds", "unix milliseconds", ..., "ISO-8601 date/time".
const char* time_reading_text(TimeReading reading);
// For people, what a format accepts: "a number of unix milliseconds", "an ISO-8601 date/time".
const char* time_format_text(TimeFormat format);

// The times a purchase log can plausibly hold: [1970-01-01, 2100-01-01) UTC. The lower end admits
// relative times (seconds since a log's start, day numbers), which logs use and which order rows
// as well as dates do; the upper end refuses a number read in too coarse a unit (today's
// milliseconds read as seconds land some 50,000 years ahead).
inline constexpr std::int64_t kPlausibleTimeBegin = 0;
inline constexpr std::int64_t kPlausibleTimeEnd = 4102444800;  // 2100-01-01T00:00:00Z
inline bool plausible_time(std::int64_t unix_seconds) {
  return unix_seconds >= kPlausibleTimeBegin && unix_seconds < kPlausibleTimeEnd;
}

// The unit data.time_format = "auto" reads a unix number in, by its magnitude: seconds below
// 1e11 (before the year 5138), milliseconds below 1e14, microseconds below 1e17, else
// nanoseconds. A plausible time after 1973-03-03 written in any of the units lies in that unit's
// band, so a column of one unit is read in that unit throughout.
TimeReading unix_unit_by_magnitude(double value);

struct ParsedTime {
  std::int64_t seconds = 0;  // UTC unix seconds, fractions dropped towards the earlier second
  TimeReading reading = TimeReading::kUnixSeconds;
};

// The time `text` holds in `format`, and how it was read; nullopt when it is no timestamp of
// that format (or a number too large for any time). The range is not checked: see
// plausible_time and implausible_time_text.
std::optional<ParsedTime> parse_time(std::string_view text, TimeFormat format);

// parse_time's seconds.
std::optional<std::int64_t> parse_timestamp(std::string_view text, TimeFormat format);

// Why a parsed but implausible time is refused, for a bad-row line: "'1700000000000' read as
// unix seconds is 55840-11-08T22:13:20, outside the plausible range 1970-01-01 .. 2099-12-31; as
// unix milliseconds it is 2023-11-14T22:13:20: set data.time_format = "unix_ms" if that is the
// column's unit" (the suggestion when another unit makes the number plausible). `set_unit` is
// what comes before the unit's quoted name in the suggestion (a command's own file has an
// option for it: "give --time-format ").
std::string implausible_time_text(std::string_view text, const ParsedTime& time, TimeFormat format,
                                  const std::string& set_unit = "set data.time_format = ");

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
