// OpenBLAS's kernels chosen from the CPU's features: see blas_core.hpp.
#include "runtime/blas_core.hpp"

#include <cstdlib>
#include <cstring>

// OpenBLAS's own entry points; weak, so that a build against another BLAS (the CUDA build's)
// still links, and then nothing is changed.
extern "C" {
char* openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}

namespace ml::runtime {
namespace {
// The kernels OpenBLAS fell back to before choose_blas_core() corrected it ("" when it did not).
std::string replaced_core;
}  // namespace

const char* blas_core_for_this_cpu() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

void choose_blas_core() {
  if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* running = openblas_get_corename();
  const char* better = blas_core_for_this_cpu();
  if (running == nullptr || better == nullptr || std::strcmp(running, "Prescott") != 0) return;
  if (setenv("OPENBLAS_CORETYPE", better, /*overwrite=*/0) != 0) return;
  replaced_core = running;
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
}

std::string blas_core_description() {
  if (!openblas_get_corename) return "BLAS kernels: unknown (not OpenBLAS)";
  std::string text = std::string("OpenBLAS kernels: ") + openblas_get_corename();
  if (!replaced_core.empty())
    text += " (chosen from the CPU's features: OpenBLAS's own choice was " + replaced_core + ")";
  else if (const char* env = std::getenv("OPENBLAS_CORETYPE"))
    text += std::string(" (OPENBLAS_CORETYPE=") + env + ")";
  return text;
}

}  // namespace ml::runtime
