// Small string helpers shared across the tool (joining, trimming, parsing numbers without
// locale surprises, edit-distance suggestions for typos).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ml {

std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string_view trim(std::string_view s);
std::string to_lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
// The text up to its first line break: torch's messages span lines and carry backtraces, and the
// tool promises one-line errors.
std::string first_line(std::string_view s);

// Whole-string parses (surrounding spaces allowed); nullopt on anything else.
std::optional<double> parse_double(std::string_view s);
std::optional<std::int64_t> parse_int(std::string_view s);

// `text` in single quotes for a one-line message: control bytes (a NUL, a line break) as \xNN, so
// the line stays one line and is not cut short; beyond `max_chars` it is shortened with "...".
std::string quoted_value(std::string_view text, std::size_t max_chars = 60);

// The candidate closest to `word` by edit distance, or "" when none is close enough to be a
// plausible typo.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// "12,345,678" for tables meant for people.
std::string with_thousands(std::int64_t n);
// Formats `v` with `digits` decimals.
std::string fixed(double v, int digits);
// `v` as printf's %g writes it: at most 6 significant digits, no trailing zeros ("0.1" for
// 0.09999999999999999 = 0.3 / 3, "0.001", "1e-05", "300"). For settings shown to people
// (learning rates, counts kept in doubles); files that are read back keep the exact value.
std::string short_number(double v);
// "1 step", "5 steps", "0 steps": `count` and `noun`, plural ("s" added) unless count is 1.
std::string count_of(long long count, const std::string& noun);

}  // namespace ml
