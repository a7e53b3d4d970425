// Progress lines: see progress.hpp.
#include "util/progress.hpp"

#include <cmath>

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

// Iterations and episodes are counted whole, megabytes are not.
bool whole(double v) {
  return std::isfinite(v) && v == std::floor(v);
}

std::string amount(double v, bool whole_numbers) {
  return whole_numbers ? fmt::format("{:.0f}", v) : fmt::format("{:.1f}", v);
}
}  // namespace

std::string progress_text(const std::string& what, const std::string& unit, double done,
                          double total, double elapsed_seconds) {
  const bool whole_numbers = whole(done) && whole(total);
  const double rate = elapsed_seconds > 0 ? done / elapsed_seconds : 0.0;
  if (total > 0 && rate > 0)
    return fmt::format("{}: {} / {} {} ({:.0f}%), {:.1f} {}/s, ETA {}", what,
                       amount(done, whole_numbers), amount(total, whole_numbers), unit,
                       100.0 * done / total, rate, unit, eta_text((total - done) / rate));
  return fmt::format("{}: {} {}, {:.1f} {}/s", what, amount(done, whole_numbers), unit, rate, unit);
}

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
  spdlog::info("{}", progress_text(what_, unit_, done, total_, elapsed));
}

void Progress::finish() {
  if (!shown_) return;
  double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  spdlog::info("{}: {} {} in {:.1f} s ({:.1f} {}/s)", what_, amount(done_, whole(done_)), unit_,
               elapsed, elapsed > 0 ? done_ / elapsed : 0.0, unit_);
}

}  // namespace ml
