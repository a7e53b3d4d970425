// Fuzz harness for the time parser (util/time_parse.hpp): every format on the input as a cell,
// and the round trips the tool relies on: an instant formatted by format_iso8601 (inspect's
// first/last time) parses back to itself, a parsed date converts to the civil date written in
// it, and days_from_civil inverts civil_from_days.
//
// Input: the whole input is the cell.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "util/time_parse.hpp"

namespace {

using ml::TimeFormat;

// Seconds of 0000-01-01T00:00:00 and of 10000-01-01T00:00:00: format_iso8601 writes four-digit
// years only in between.
constexpr std::int64_t kFirstFourDigitSecond = -62167219200;
constexpr std::int64_t kAfterFourDigitSeconds = 253402300800;

void check_round_trip(std::int64_t t, std::string_view source) {
  const std::string text = ml::format_iso8601(t);
  if (t < kFirstFourDigitSecond || t >= kAfterFourDigitSeconds) return;
  const std::optional<std::int64_t> back = ml::parse_timestamp(text, TimeFormat::kIso8601);
  if (back != t)
    ml::fuzz::property_failed("'" + std::string(source) + "' is " + std::to_string(t) +
                              ", formatted '" + text + "', which parses back to " +
                              (back ? std::to_string(*back) : "nothing"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view cell(reinterpret_cast<const char*>(data), size);
  for (TimeFormat format : {TimeFormat::kAuto, TimeFormat::kUnix, TimeFormat::kIso8601})
    if (const std::optional<std::int64_t> t = ml::parse_timestamp(cell, format))
      check_round_trip(*t, cell);

  if (const std::optional<std::int64_t> days = ml::parse_iso_date(cell)) {
    const ml::CivilDate date = ml::civil_from_days(*days);
    const std::string written(cell.substr(0, 10));
    char expected[32];
    std::snprintf(expected, sizeof expected, "%04lld-%02u-%02u", static_cast<long long>(date.year),
                  date.month, date.day);
    if (written != expected)
      ml::fuzz::property_failed("date '" + written + "' is day " + std::to_string(*days) +
                                ", which is " + expected);
  }

  // The civil-date algorithms on any day count whose year fits an int64 comfortably.
  if (size >= 8) {
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | data[i];
    const std::int64_t days = static_cast<std::int64_t>(bits >> 14) - (std::int64_t{1} << 49);
    const ml::CivilDate date = ml::civil_from_days(days);
    if (date.month < 1 || date.month > 12 || date.day < 1 || date.day > 31 ||
        ml::days_from_civil(date.year, date.month, date.day) != days)
      ml::fuzz::property_failed("civil_from_days(" + std::to_string(days) +
                                ") does not invert days_from_civil");
  }
  return 0;
}
