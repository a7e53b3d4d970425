// A progress line for long work: logged to stderr at most every two seconds, with the rate and
// an ETA, and only once the work has run for two seconds (short commands stay quiet).
#pragma once

#include <chrono>
#include <string>

namespace ml {

// The line Progress::update logs after `elapsed_seconds`: "meta-training maml: 197 / 300
// iterations (66%), 2.4 iterations/s, ETA 0m42s" (`total` <= 0: no total, percentage or ETA).
// Whole-number counts print without decimals, others with one ("12.5 / 80.0 MB").
std::string progress_text(const std::string& what, const std::string& unit, double done,
                          double total, double elapsed_seconds);

class Progress {
 public:
  // `unit` names what is counted ("MB", "episodes"); `total` <= 0 means unknown.
  Progress(std::string what, std::string unit, double total);
  void update(double done);
  // Logs a final line with the average rate when any progress line was shown.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_, unit_;
  double total_;
  double done_ = 0;
  Clock::time_point start_, last_;
  bool shown_ = false;
};

}  // namespace ml
