// Writing a file so that it is either complete or absent: the content goes to PATH.tmp-PID in
// the same folder and is renamed over PATH only once fully written, so a failure never leaves
// a half-written file (or destroys an existing one) under the final name.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace ml {

// Throws DataError naming `path` when it cannot be written; the temporary is removed on any
// failure, including an exception thrown by `write`.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

}  // namespace ml
