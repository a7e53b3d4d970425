// Stopping on SIGINT (Ctrl-C) and SIGTERM without losing work or leaving half-written files.
// The handler only records the signal; long loops poll it between units of work (a
// meta-iteration, an evaluation episode, a log file, a task) and stop there: the trainer saves
// its latest checkpoint first, every other command throws before writing any output, and the
// outputs written so far are complete files (util/atomic_file.hpp). A second signal, for when
// the current unit takes too long, ends the process at once (_exit), leaving at most a
// temporary file that the next write of the same file removes.
#pragma once

#include <string>

namespace ml {

// Installs the handlers for SIGINT and SIGTERM (once per process; the CLI does it before
// parsing). The first signal prints one line to stderr saying the command stops after the
// current step; a second exits with 128 + its number (130 for SIGINT, 143 for SIGTERM).
void install_interrupt_handlers();

// The signal received (SIGINT or SIGTERM), or 0 while none was.
int interrupt_signal();

// Throws InterruptedError (exit code 128 + the signal) when a signal was received; `where`
// says what stopped ("reading the log"), for the one error line.
void throw_if_interrupted(const std::string& where);

// "SIGINT" or "SIGTERM" (or "signal N").
std::string signal_name(int signal);

// Tests only: forget a received signal, so that a later test starts clean.
void reset_interrupt_for_testing();

}  // namespace ml
