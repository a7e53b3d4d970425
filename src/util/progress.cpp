// Progress lines: see progress.hpp.
#include "util/progress.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ml {

namespace {
constexpr double kQuietSeconds = 2.0;

std::string eta_text(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  return fmt::format("{}m{:02}s", s / 60, s % 60);
}
}  // namespace

Progress::Progress(std::string what, std::string unit, double total)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      start_(Clock::now()),
      last_(start_) {}

void Progress::update(double done) {
  done_ = done;
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < kQuietSeconds || std::chrono::duration<double>(now - last_).count() < kQuietSeconds)
    return;
  last_ = now;
  shown_ = true;
  double rate = done / elapsed;
  if (total_ > 0 && rate > 0)
    spdlog::info("{}: {:.1f} / {:.1f} {} ({:.0f}%), {:.1f} {}/s, ETA {}", what_, done, total_,
                 unit_, 100.0 * done / total_, rate, unit_, eta_text((total_ - done) / rate));
  else
    spdlog::info("{}: {:.1f} {}, {:.1f} {}/s", what_, done, unit_, rate, unit_);
}

void Progress::finish() {
  if (!shown_) return;
  double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  spdlog::info("{}: {:.1f} {} in {:.1f} s ({:.1f} {}/s)", what_, done_, unit_, elapsed,
               elapsed > 0 ? done_ / elapsed : 0.0, unit_);
}

}  // namespace ml
