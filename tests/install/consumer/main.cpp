// Calls into the installed library: a Boost-backed quantile, an xxHash checksum (both need the
// package's link dependencies) and the version header.
#include <cstdio>
#include <string>

#include "metrics/confidence.hpp"
#include "util/checksum.hpp"
#include "util/version.hpp"

int main() {
  const std::string bytes = "metalearn";
  std::printf("t %.6f\n", ml::metrics::student_t_quantile(0.975, 9));
  std::printf("checksum %016llx\n",
              static_cast<unsigned long long>(ml::checksum64(bytes.data(), bytes.size())));
  std::printf("version %s\n", ml::kToolVersion);
  return 0;
}
