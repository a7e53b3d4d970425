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

std::optional<std::int64_t> parse_unix(std::string_view s) {
  if (auto i = parse_int(s)) return *i;
  if (auto d = parse_double(s)) {
    // Fractions are dropped towards the earlier second, as the ISO parser drops them.
    if (*d > -9.2e18 && *d < 9.2e18) return static_cast<std::int64_t>(std::floor(*d));
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> parse_timestamp(std::string_view text, TimeFormat format) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  switch (format) {
    case TimeFormat::kUnix:
      return parse_unix(text);
    case TimeFormat::kIso8601:
      return parse_iso(text);
    case TimeFormat::kAuto:
      // A date starts with four digits and a dash; anything else numeric is unix seconds.
      if (text.size() >= 5 && text[4] == '-') return parse_iso(text);
      return parse_unix(text);
  }
  return std::nullopt;
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
