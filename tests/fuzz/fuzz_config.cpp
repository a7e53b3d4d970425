// Fuzz harness for the config loader (config/config.hpp): a JSON config file plus `--set`
// overrides, through load_config as the CLI calls it. Anything but a typed ml::Error escaping
// is a finding (main would report it as an unexpected failure, not as a bad config). A config
// that loads must survive what run directories and checkpoints do with it: written by to_json
// and read back by config_from_json, it must give the same JSON again.
//
// Input: the config file's text, then each override after a NUL byte (at most 16 of them).
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "fuzz_support.hpp"
#include "util/errors.hpp"

namespace {

std::string printable(const ml::config::Json& j) {
  return j.dump(-1, ' ', false, ml::config::Json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t file_end = std::min(input.find('\0'), input.size());
  std::vector<std::string> overrides;
  for (std::size_t pos = file_end; pos < input.size() && overrides.size() < 16;) {
    const std::size_t next = std::min(input.find('\0', pos + 1), input.size());
    overrides.emplace_back(input.substr(pos + 1, next - pos - 1));
    pos = next;
  }
  const std::string& path = ml::fuzz::ScratchFile::instance().write(input.substr(0, file_end));

  ml::config::Config config;
  try {
    config = ml::config::load_config(path, overrides);
  } catch (const ml::Error&) {
    return 0;
  }
  ml::config::Json written;
  to_json(written, config);
  // Run directories and checkpoints store the resolved config as JSON text.
  try {
    (void)written.dump();
  } catch (const ml::config::Json::exception& e) {
    ml::fuzz::property_failed("a loaded config cannot be written as JSON: " +
                              std::string(e.what()) + "\n" + printable(written));
  }
  ml::config::Json again;
  try {
    to_json(again, ml::config::config_from_json(written));
  } catch (const ml::Error& e) {
    ml::fuzz::property_failed("a loaded config, written out, is refused: " + std::string(e.what()) +
                              "\n" + printable(written));
  }
  if (again != written)
    ml::fuzz::property_failed("a loaded config changes when written out and read back:\n" +
                              printable(written) + "\n" + printable(again));
  return 0;
}
