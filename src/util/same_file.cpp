// Paths compared by the file they name: see same_file.hpp.
#include "util/same_file.hpp"

#include <system_error>

namespace ml {

namespace fs = std::filesystem;

fs::path resolved_path(const std::string& path) {
  std::error_code error;
  fs::path full = fs::weakly_canonical(fs::absolute(path, error), error);
  return error ? fs::absolute(path).lexically_normal() : full;
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code error;
  return fs::equivalent(a, b, error) || resolved_path(a) == resolved_path(b);
}

}  // namespace ml
