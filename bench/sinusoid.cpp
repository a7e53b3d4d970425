// The MAML paper's sinusoid regression at full size: prints query MSE after 0..10 adaptation
// steps for a meta-learner and the pretrained baseline. Usage: metalearn_sinusoid [iterations]
// [algorithm]. The test suite runs a shortened version (tests/test_meta.cpp).
#include <cstdio>
#include <cstdlib>
#include <string>

#include <torch/torch.h>

#include "meta/sinusoid.hpp"
#include "runtime/blas_core.hpp"

int main(int argc, char** argv) {
  ml::runtime::choose_blas_core();
  torch::set_num_threads(1);
  ml::meta::SinusoidOptions o;
  o.iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const std::string algorithm = argc > 2 ? argv[2] : "maml";
  std::printf("%-10s %10s %10s %10s %10s  %8s\n", "method", "mse@0", "mse@1", "mse@5", "mse@10",
              "seconds");
  for (const std::string& method : {algorithm, std::string("pretrain")}) {
    const auto parsed = ml::enum_from_name<ml::config::Algorithm>(method);
    if (!parsed) {
      std::fprintf(stderr, "unknown algorithm '%s'\n", method.c_str());
      return 2;
    }
    o.algorithm = *parsed;
    auto r = ml::meta::run_sinusoid(o);
    std::printf("%-10s %10.3f %10.3f %10.3f %10.3f  %8.1f\n", method.c_str(), r.query_mse[0],
                r.query_mse[1], r.query_mse[5], r.query_mse[10], r.seconds);
  }
  return 0;
}
