// Config choices: see choices.hpp.
#include "config/choices.hpp"

#include "util/strings.hpp"

namespace ml::config {

char delimiter_char(Delimiter d) {
  switch (d) {
    case Delimiter::kAuto:
      return 0;
    case Delimiter::kComma:
      return ',';
    case Delimiter::kTab:
      return '\t';
    case Delimiter::kSemicolon:
      return ';';
    case Delimiter::kSpace:
      return ' ';
    case Delimiter::kPipe:
      return '|';
  }
  return 0;
}

bool is_user_aggregate(Aggregate a) {
  switch (a) {
    case Aggregate::kUserFrequency:
    case Aggregate::kUserSpend:
    case Aggregate::kUserRecency:
    case Aggregate::kUserMeanPrice:
      return true;
    case Aggregate::kItemPopularity:
    case Aggregate::kItemMeanPrice:
    case Aggregate::kItemBuyers:
      return false;
  }
  return false;
}

bool is_baseline(Algorithm a) {
  return a == Algorithm::kPretrain || a == Algorithm::kScratch;
}

std::vector<std::string> baseline_names() {
  std::vector<std::string> names;
  for (Algorithm a : enum_values<Algorithm>())
    if (is_baseline(a)) names.push_back(enum_name(a));
  return names;
}

bool is_baseline_name(std::string_view method) {
  const auto algorithm = enum_from_name<Algorithm>(method);
  return algorithm && is_baseline(*algorithm);
}

std::string DeviceSpec::name() const {
  std::string text = enum_name(kind);
  if (kind == DeviceKind::kCuda && index >= 0) text += ":" + std::to_string(index);
  return text;
}

std::optional<DeviceSpec> parse_device_spec(std::string_view text) {
  const std::string cuda = enum_name(DeviceKind::kCuda) + ":";
  if (auto kind = enum_from_name<DeviceKind>(text)) return DeviceSpec{*kind, -1};
  if (!starts_with(text, cuda)) return std::nullopt;
  auto index = parse_int(text.substr(cuda.size()));
  if (!index || *index < 0 || *index > 1'000'000) return std::nullopt;
  return DeviceSpec{DeviceKind::kCuda, static_cast<int>(*index)};
}

}  // namespace ml::config
