// Logging set-up: see logging.hpp.
#include "util/logging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "util/errors.hpp"
#include "util/utf8.hpp"

namespace ml {

namespace {

// `%*`: the message with any bytes that are not UTF-8 escaped (util/utf8.hpp), since log lines
// quote paths and data; a terminal or an editor then never sees broken text.
class Utf8Message : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const std::string escaped = is_valid_utf8(text) ? std::string() : utf8_escaped(text);
    const std::string_view out = escaped.empty() ? text : std::string_view(escaped);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<Utf8Message>();
  }
};

std::unique_ptr<spdlog::formatter> formatter(const std::string& pattern) {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<Utf8Message>('*').set_pattern(pattern);
  return f;
}

}  // namespace

void setup_logging(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw UsageError("--log-level " + level + ": expected trace, debug, info, warn, error or off");
  auto logger = spdlog::stderr_color_mt("metalearn");
  logger->set_formatter(formatter("[%H:%M:%S.%e] [%^%l%$] %*"));
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
}

ScopedLogFile::ScopedLogFile(const std::string& path) {
  // Opened once here first: spdlog's own error would reach the user as an internal error.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot write log file '" + path + "': " + std::strerror(errno));
  ::close(fd);
  sink_ = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  sink_->set_formatter(formatter("[%Y-%m-%d %H:%M:%S.%e] [%l] %*"));
  spdlog::default_logger()->sinks().push_back(sink_);
}

ScopedLogFile::~ScopedLogFile() {
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
}

}  // namespace ml
