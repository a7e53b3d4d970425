// metalearn: few-shot meta-learning for e-commerce logs. All logic lives in the library.
#include "cli/command.hpp"
#include "runtime/blas_core.hpp"

int main(int argc, char** argv) {
  ml::runtime::choose_blas_core();
  return ml::cli::run_cli(argc, argv);
}
