// metalearn: few-shot meta-learning for e-commerce logs. All logic lives in the library.
#include "cli/command.hpp"

int main(int argc, char** argv) {
  return ml::cli::run_cli(argc, argv);
}
