// The metalearn command line: builds the CLI11 app from the subcommand files and is the only
// place where typed errors become a message line and an exit code.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "cli/command.hpp"
#include "runtime/device.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/logging.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"
#include "util/version.hpp"

namespace ml::cli {

int run_cli(int argc, char** argv) {
  // Before any work: Ctrl-C and SIGTERM stop between steps, with outputs consistent.
  install_interrupt_handlers();
  CLI::App app{
      "metalearn: few-shot meta-learning for e-commerce purchase logs.\n"
      "Samples tasks (one per category, brand, user, ...) from CSV logs, meta-trains a LibTorch\n"
      "model across them and adapts it to new, data-poor tasks."};
  app.name("metalearn");
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  // Every subcommand's options on one page: what the man page is generated from.
  app.set_help_all_flag("--help-all", "Print the help of every subcommand and exit");
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "stderr log level: trace, debug, info, warn, error, off (also after the "
                 "subcommand)");
  // Subcommands inherit this: an option they do not know is tried on the app, so that
  // `metalearn train --log-level debug ...` works as well as `metalearn --log-level debug train`.
  app.fallthrough();
  app.set_version_flag("--version", [] {
    return std::string("metalearn ") + kToolVersion + " (" + runtime::runtime_description() + ")";
  });
  app.parse_complete_callback([&] { setup_logging(log_level); });

  add_train_command(app);
  add_adapt_command(app);
  add_eval_command(app);
  add_predict_command(app);
  add_explain_command(app);
  add_export_command(app);
  add_inspect_command(app);
  add_synth_command(app);
  add_embeddings_command(app);
  add_completion_command(app);
  add_config_docs_command(app);

  // Errors name the subcommand that ran ("metalearn inspect: error: ..."), found after parsing.
  auto command_name = [&app] {
    auto subcommands = app.get_subcommands();
    return subcommands.empty() ? std::string("metalearn")
                               : "metalearn " + subcommands.front()->get_name();
  };
  try {
    app.parse(argc, argv);
    // Results go to stdout: a full disk behind a redirect must not pass for a complete result.
    errno = 0;
    std::cout.flush();
    if (!std::cout) {
      std::cerr << command_name() << ": error: cannot write the results to standard output: "
                << (errno ? std::strerror(errno) : "a write failed") << "\n";
      return static_cast<int>(ExitCode::kIo);
    }
    // A signal that came during the command's last step, after its last check: the work is
    // done and its outputs are complete, but a Ctrl-C must still stop the script that ran it.
    if (const int signal = interrupt_signal()) {
      std::cerr << command_name() << ": interrupted (" << signal_name(signal)
                << ") as it finished: its work is done and its outputs are complete\n";
      return 128 + signal;
    }
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // An unknown first word leaves "a subcommand is required", which hides the typo: name it.
    if (app.get_subcommands().empty() && argc > 1) {
      const std::string word = argv[1];
      const bool option = !word.empty() && word[0] == '-';
      if (option && !app.get_option_no_throw(word.substr(0, word.find('=')))) {
        std::cerr << "metalearn: error: unknown top-level option '" << printable(word)
                  << "' (see metalearn --help)\n";
        return static_cast<int>(ExitCode::kUsage);
      }
      if (!option) {
        std::cerr << "metalearn: error: unknown subcommand '" << printable(word)
                  << "': expected train, adapt, eval, predict, explain, export, inspect, "
                     "synth or embeddings "
                     "(see metalearn --help)\n";
        return static_cast<int>(ExitCode::kUsage);
      }
    }
    std::cerr << "metalearn: error: " << printable(e.what()) << " (see metalearn --help)\n";
    return static_cast<int>(ExitCode::kUsage);
  } catch (const InterruptedError& e) {
    std::cerr << command_name() << ": " << printable(e.what()) << "\n";
    return static_cast<int>(e.code());
  } catch (const Error& e) {
    // Messages quote file names, cells and bytes read from damaged files: printable() keeps
    // each one a single line of valid UTF-8 whatever those held.
    std::cerr << command_name() << ": error: " << printable(e.what()) << "\n";
    return static_cast<int>(e.code());
  } catch (const std::filesystem::filesystem_error& e) {
    // Library code reports the file operations it expects to fail as IoError; this catches the
    // rest with the same code. Its text already names the operation, reason and path(s).
    std::string what = e.what();
    const std::string prefix = "filesystem error: ";
    if (what.compare(0, prefix.size(), prefix) == 0) what.erase(0, prefix.size());
    std::cerr << command_name() << ": error: " << printable(what) << "\n";
    return static_cast<int>(ExitCode::kIo);
  } catch (const std::exception& e) {
    // Library errors (torch's) can carry a multi-line backtrace: one line for the user, the
    // rest at debug level.
    const std::string what = e.what();
    std::cerr << command_name() << ": internal error: " << printable(first_line(what)) << "\n";
    if (what.find('\n') != std::string::npos) spdlog::debug("{}", printable(what));
    return static_cast<int>(ExitCode::kRuntime);
  }
}

}  // namespace ml::cli
