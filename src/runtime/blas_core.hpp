// Which kernels OpenBLAS runs. OpenBLAS picks them from the CPU's model number when the library
// loads, and a release older than the CPU falls back to its slowest x86-64 kernels: Debian 12's
// OpenBLAS 0.3.21 on an Emerald Rapids Xeon (family 6, model 207) runs "Prescott" (SSE3), a
// 1024² float product at 43 GFLOP/s on one core where its AVX-512 kernels reach 205, and
// metalearn's meta-steps at half speed. The CPU's features (cpuid), unlike its model number,
// say which kernels it can run. So where OpenBLAS fell back to Prescott on a CPU with AVX2 or
// AVX-512, metalearn's executables set OPENBLAS_CORETYPE from those features and have OpenBLAS
// choose again (gotoblas_dynamic_quit + gotoblas_dynamic_init, the two halves of its own load-
// time choice) before any product has run. A user's own OPENBLAS_CORETYPE always wins;
// OPENBLAS_VERBOSE=2 makes OpenBLAS print what it picked.
#pragma once

#include <string>

namespace ml::runtime {

// The OpenBLAS core type this CPU's features call for: "SkylakeX" (AVX-512 F/CD/BW/DQ/VL),
// "Haswell" (AVX2 and FMA), else nullptr. The kernels OpenBLAS itself uses for CPUs it knows
// with these features.
const char* blas_core_for_this_cpu();

// Where OpenBLAS fell back to Prescott and blas_core_for_this_cpu() names better kernels,
// and OPENBLAS_CORETYPE is not set: sets it to them and makes OpenBLAS choose again. Otherwise
// does nothing. Call first thing in main(), before any BLAS call and any thread of ours (tests:
// a static initialiser); not thread-safe.
void choose_blas_core();

// The kernels OpenBLAS runs now ("SkylakeX") and why; "unknown" for a BLAS that does not say
// (not OpenBLAS). For --version and the logs.
std::string blas_core_description();

}  // namespace ml::runtime
