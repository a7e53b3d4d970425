// `metalearn synth`: write a realistic, seeded synthetic purchase log.
#include <iostream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "synth/synthetic_log.hpp"
#include "util/strings.hpp"

namespace ml::cli {

void add_synth_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "synth", "Write a synthetic purchase log (events, items, users) for demos and tests");
  struct Options {
    synth::SynthOptions synth;
    std::string out = "data/synth";
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  auto& s = o->synth;
  command->add_option("-o,--out", o->out, "output folder for events.csv, items.csv, users.csv");
  using Count = std::int64_t;
  command->add_option("--users", s.users, "number of users")
      ->check(whole_number<Count>(1, synth::kMaxUsers));
  command->add_option("--categories", s.categories, "number of categories (tasks)")
      ->check(whole_number<Count>(1, synth::kMaxCategories));
  command->add_option("--items-per-category", s.items_per_category, "mean items per category")
      ->check(whole_number<Count>(1, synth::kMaxItemsPerCategory));
  command->add_option("--sessions", s.sessions, "browsing sessions (about 4 event rows each)")
      ->check(whole_number<Count>(1, synth::kMaxSessions));
  command->add_option("--seed", s.seed, "random seed: same seed, same files")
      ->check(whole_number<std::uint64_t>());
  command->add_option("--latent-dim", s.latent_dim, "dimension of user/item taste vectors")
      ->check(whole_number(1, synth::kMaxLatentDim));
  command->add_option("--zipf", s.zipf_exponent, "Zipf exponent of item popularity")
      ->check(non_negative_float());
  command
      ->add_option("--task-spread", s.task_spread,
                   "spread of each category's latent taste matrix and base rate (0 = shared)")
      ->check(non_negative_float());
  command
      ->add_option("--audience", s.audience_strength,
                   "sd (logit) of each category's preference by age band and region "
                   "(0 = every category likes the same users)")
      ->check(non_negative_float());
  command
      ->add_option("--premium", s.premium_strength,
                   "sd (logit per price-tier step) of each category's premium preference "
                   "(0 = price matters the same way everywhere)")
      ->check(non_negative_float());
  command->add_option("--start-date", s.start_date, "ISO date of the first event");
  command->add_option("--days", s.days, "days the log spans")
      ->check(whole_number(1, synth::kMaxDays));
  command->add_flag("--embeddings", s.user_vectors,
                    "also write user_vectors.csv: each user's taste vector with noise, an "
                    "embedding table for features.embeddings (configs/synthetic_embeddings.json)");
  command->add_flag("--json", o->json, "machine-readable summary on stdout");
  command->callback([o] {
    synth::validate(o->synth);  // a bad option is the one line printed
    spdlog::info("writing synthetic log to {}", o->out);
    synth::SynthSummary summary = synth::write_synthetic_log(o->synth, o->out);
    if (o->json) {
      nlohmann::json j = {{"event_rows", summary.event_rows},
                          {"views", summary.views},
                          {"carts", summary.carts},
                          {"purchases", summary.purchases},
                          {"sessions", summary.sessions},
                          {"users", summary.users},
                          {"items", summary.items},
                          {"categories", summary.categories},
                          {"brands", summary.brands},
                          {"files",
                           {{"events", summary.files.events},
                            {"items", summary.files.items},
                            {"users", summary.files.users},
                            {"user_vectors", summary.files.user_vectors}}}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::cout << "events   " << summary.files.events << "  (" << with_thousands(summary.event_rows)
              << " rows: " << with_thousands(summary.views) << " views, "
              << with_thousands(summary.carts) << " carts, " << with_thousands(summary.purchases)
              << " purchases)\n"
              << "items    " << summary.files.items << "  (" << with_thousands(summary.items)
              << " items, " << summary.categories << " categories, " << summary.brands
              << " brands)\n"
              << "users    " << summary.files.users << "  (" << with_thousands(summary.users)
              << " users)\n";
    if (!summary.files.user_vectors.empty())
      std::cout << "vectors  " << summary.files.user_vectors << "  (" << o->synth.latent_dim
                << " numbers per user)\n";
  });
}

}  // namespace ml::cli
