// Resident memory from /proc: see resident_memory.hpp.
#include "runtime/resident_memory.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace ml::runtime {

std::optional<ResidentMemory> resident_memory() {
  std::ifstream status("/proc/self/status");
  if (!status) return std::nullopt;
  ResidentMemory m;
  bool rss = false, hwm = false;
  for (std::string line; std::getline(status, line);) {
    // "VmRSS:	  123456 kB"
    std::istringstream fields(line);
    std::string key;
    std::int64_t kib = 0;
    if (!(fields >> key >> kib)) continue;
    if (key == "VmRSS:") m.current_bytes = kib * 1024, rss = true;
    if (key == "VmHWM:") m.peak_bytes = kib * 1024, hwm = true;
  }
  if (!rss || !hwm) return std::nullopt;
  return m;
}

bool reset_peak_resident_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  if (!clear) return false;
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

}  // namespace ml::runtime
