// Atomic file writes: see atomic_file.hpp.
#include "util/atomic_file.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "util/errors.hpp"

namespace ml {

namespace fs = std::filesystem;

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  const fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp-" + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out)
        throw DataError("cannot write '" + path + "': cannot create a file in '" +
                        (target.has_parent_path() ? target.parent_path().string() : ".") + "'");
      write(out);
      out.flush();
      if (!out) throw DataError("writing '" + path + "' failed (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    if (ec) throw DataError("cannot write '" + path + "': " + ec.message());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace ml
