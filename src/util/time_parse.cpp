// Timestamp parsing: see time_parse.hpp.
#include "util/time_parse.hpp"

#include <cctype>
#include <cmath>

#include <fmt/format.h>

#include "util/strings.hpp"

namespace ml {

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

CivilDate civil_from_days(std::int64_t days) {
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  CivilDate date;
  date.day = doy - (153 * mp + 2) / 5 + 1;
  date.month = mp < 10 ? mp + 3 : mp - 9;
  date.year = static_cast<std::int64_t>(yoe) + era * 400 + (date.month <= 2 ? 1 : 0);
  return date;
}

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

std::optional<std::int64_t> parse_iso(std::string_view s) {
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day))
    return std::nullopt;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 ||
      day > kDays[month - 1] + (month == 2 && leap(year) ? 1 : 0))
    return std::nullopt;
  std::size_t pos = 10;
  std::int64_t offset = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!digits(s, pos, 2, hour) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !digits(s, pos + 3, 2, minute))
      return std::nullopt;
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, second)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {  // fractions are dropped
        ++pos;
        std::size_t start = pos;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
        if (pos == start) return std::nullopt;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        pos = s.size();
      } else if (s[pos] == '+' || s[pos] == '-') {
        int oh, om;
        std::size_t colon = (pos + 3 < s.size() && s[pos + 3] == ':') ? 1 : 0;
        if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 3 + colon, 2, om) ||
            pos + 5 + colon != s.size() || oh > 23 || om > 59)
          return std::nullopt;
        offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
        pos = s.size();
      } else {
        return std::nullopt;
      }
    }
  }
  return days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
         hour * 3600 + minute * 60 + second - offset;
}

constexpr std::int64_t kUnitsPerSecond[] = {1, 1000, 1000000, 1000000000};  // by TimeReading

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0) ? 1 : 0);
}

// A unix number in `unit` (kAuto: its magnitude's), as seconds. Fractions are dropped towards
// the earlier second, as the ISO parser drops them.
std::optional<ParsedTime> parse_unix(std::string_view s, std::optional<TimeReading> unit) {
  if (auto i = parse_int(s)) {
    const TimeReading reading = unit ? *unit : unix_unit_by_magnitude(static_cast<double>(*i));
    return ParsedTime{floor_div(*i, kUnitsPerSecond[static_cast<int>(reading)]), reading};
  }
  if (auto d = parse_double(s)) {
    if (!std::isfinite(*d)) return std::nullopt;
    const TimeReading reading = unit ? *unit : unix_unit_by_magnitude(*d);
    const double seconds =
        std::floor(*d / static_cast<double>(kUnitsPerSecond[static_cast<int>(reading)]));
    if (seconds > -9.2e18 && seconds < 9.2e18)
      return ParsedTime{static_cast<std::int64_t>(seconds), reading};
  }
  return std::nullopt;
}

}  // namespace

const char* time_reading_text(TimeReading reading) {
  switch (reading) {
    case TimeReading::kUnixSeconds:
      return "unix seconds";
    case TimeReading::kUnixMs:
      return "unix milliseconds";
    case TimeReading::kUnixUs:
      return "unix microseconds";
    case TimeReading::kUnixNs:
      return "unix nanoseconds";
    case TimeReading::kIso8601:
      return "ISO-8601 date/time";
  }
  return "?";
}

const char* time_format_text(TimeFormat format) {
  switch (format) {
    case TimeFormat::kAuto:
      return "a unix time or an ISO-8601 date/time";
    case TimeFormat::kUnix:
      return "a number of unix seconds";
    case TimeFormat::kUnixMs:
      return "a number of unix milliseconds";
    case TimeFormat::kUnixUs:
      return "a number of unix microseconds";
    case TimeFormat::kUnixNs:
      return "a number of unix nanoseconds";
    case TimeFormat::kIso8601:
      return "an ISO-8601 date/time";
  }
  return "?";
}

TimeReading unix_unit_by_magnitude(double value) {
  const double magnitude = std::abs(value);
  if (magnitude < 1e11) return TimeReading::kUnixSeconds;
  if (magnitude < 1e14) return TimeReading::kUnixMs;
  if (magnitude < 1e17) return TimeReading::kUnixUs;
  return TimeReading::kUnixNs;
}

std::optional<ParsedTime> parse_time(std::string_view text, TimeFormat format) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  switch (format) {
    case TimeFormat::kUnix:
      return parse_unix(text, TimeReading::kUnixSeconds);
    case TimeFormat::kUnixMs:
      return parse_unix(text, TimeReading::kUnixMs);
    case TimeFormat::kUnixUs:
      return parse_unix(text, TimeReading::kUnixUs);
    case TimeFormat::kUnixNs:
      return parse_unix(text, TimeReading::kUnixNs);
    case TimeFormat::kIso8601:
      break;
    case TimeFormat::kAuto:
      // A date starts with four digits and a dash; anything else numeric is a unix number.
      if (text.size() >= 5 && text[4] == '-') break;
      return parse_unix(text, std::nullopt);
  }
  if (auto seconds = parse_iso(text)) return ParsedTime{*seconds, TimeReading::kIso8601};
  return std::nullopt;
}

std::optional<std::int64_t> parse_timestamp(std::string_view text, TimeFormat format) {
  const std::optional<ParsedTime> time = parse_time(text, format);
  if (!time) return std::nullopt;
  return time->seconds;
}

std::string implausible_time_text(std::string_view text, const ParsedTime& time, TimeFormat format,
                                  const std::string& set_unit) {
  text = trim(text);
  std::string out =
      "'" + std::string(text) + "' read as " + time_reading_text(time.reading) +
      (format == TimeFormat::kAuto && time.reading != TimeReading::kIso8601 ? " (by its magnitude)"
                                                                            : "") +
      " is " + format_iso8601(time.seconds) + ", outside the plausible range " +
      format_iso8601(kPlausibleTimeBegin).substr(0, 10) + " .. " +
      format_iso8601(kPlausibleTimeEnd - 1).substr(0, 10);
  if (time.reading == TimeReading::kIso8601) return out;
  // The unit it would be plausible in, if any: the likely mistake.
  for (TimeReading unit : {TimeReading::kUnixSeconds, TimeReading::kUnixMs, TimeReading::kUnixUs,
                           TimeReading::kUnixNs}) {
    if (unit == time.reading) continue;
    const auto other = parse_unix(text, unit);
    if (other && plausible_time(other->seconds))
      return out + "; as " + time_reading_text(unit) + " it is " + format_iso8601(other->seconds) +
             ": " + set_unit + "\"" + enum_name(unit) + "\" if that is the column's unit";
  }
  return out;
}

std::optional<std::int64_t> parse_iso_date(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  const std::optional<std::int64_t> seconds = parse_iso(text);
  if (!seconds) return std::nullopt;
  return *seconds / 86400;  // midnight UTC: an exact multiple, also before 1970
}

std::string format_iso8601(std::int64_t t) {
  // Floor division by the remainder, which cannot overflow (t - 86399 does near INT64_MIN:
  // a unix cell of -9223372036854775808 reaches here through inspect).
  std::int64_t days = t / 86400;
  std::int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  const CivilDate date = civil_from_days(days);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", date.year, date.month, date.day,
                     secs / 3600, secs / 60 % 60, secs % 60);
}

}  // namespace ml
