// Whether two paths name one file, by any spelling: what every command checks before it writes
// an output that could be one of its inputs, or two outputs that would overwrite each other.
#pragma once

#include <filesystem>
#include <string>

namespace ml {

// `path` as one spelling: absolute, its existing part resolved (symbolic links, "..", "."), the
// rest lexically normalised. std::filesystem::weakly_canonical alone leaves a relative path
// whose first element does not exist relative ("out.csv" against "./out.csv", which it makes
// absolute).
std::filesystem::path resolved_path(const std::string& path);

// True when `a` and `b` are one existing file (also through hard links), or resolve to the same
// path (neither needs to exist).
bool same_file(const std::string& a, const std::string& b);

}  // namespace ml
