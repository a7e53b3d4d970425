// Signal handling: see interrupt.hpp.
#include "util/interrupt.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

#include "util/errors.hpp"

namespace ml {

namespace {

// Lock-free, so the handler may touch it (an async-signal-safe operation).
std::atomic<int> received{0};
static_assert(std::atomic<int>::is_always_lock_free);

void write_stderr(const char* text) {
  // write() is async-signal-safe; spdlog and iostreams are not. Nothing to do on failure.
  const ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

extern "C" void on_signal(int signal) {
  int expected = 0;
  if (!received.compare_exchange_strong(expected, signal)) {
    write_stderr("metalearn: second interrupt: exiting at once\n");
    ::_exit(128 + signal);
  }
  write_stderr(
      "metalearn: interrupted: stopping after the current step (interrupt again to exit at "
      "once)\n");
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  // Blocking reads and writes resume after the handler: the loops poll, nothing needs EINTR.
  action.sa_flags = SA_RESTART;
  for (int signal : {SIGINT, SIGTERM}) ::sigaction(signal, &action, nullptr);
}

int interrupt_signal() {
  return received.load();
}

void throw_if_interrupted(const std::string& where) {
  if (const int signal = interrupt_signal())
    throw InterruptedError(signal, "interrupted (" + signal_name(signal) + ") while " + where);
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "signal " + std::to_string(signal);
  }
}

void reset_interrupt_for_testing() {
  received.store(0);
}

}  // namespace ml
