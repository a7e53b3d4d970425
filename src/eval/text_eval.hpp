// `metalearn eval` for a text run (data.text): few-shot classification on held-out classes, in
// two protocols, every method's setting first chosen on the validation classes and the new
// classes then scored once with it (the protocol of eval/cold_start.hpp):
//   N-way K-shot   `episodes` episodes of N = task.label.ways new classes, K support and
//                  task.query query texts per class; accuracy per episode, the mean over
//                  episodes with its 95% Student t interval.
//   many-way       all new classes at once (M of them: every new class with K + 1 distinct
//                  texts), K support texts per class and every other text of those classes as
//                  query (no cap). The support draw is the larger source of variation at small
//                  K (which K texts stand for a class), so the task is drawn `many_way_draws`
//                  times with seeded supports; each draw's accuracy is over all its queries,
//                  and the interval is the Student t interval over draws (a CI over the queries
//                  of one draw would hold the support fixed and claim too much).
// Methods, each paired with the run's method on the same episodes or draws:
//   the run's algorithm         its inner loop (steps chosen from a grid at meta.inner_lr); on
//                               M classes through meta::adapt_to_classes (Proto-MAML head
//                               initialisation), steps at meta.inner_lr or a tenth of it: the
//                               settings adapt chooses among (class_adaptation_choice.hpp);
//                               protonet classifies by prototypes
//   nearest_class_mean[ALGO],   classifiers fitted on the support over the run's own
//   linear_probe[ALGO]          meta-trained encoder (SimpleShot, Wang et al. 2019; Chen et al.
//                               2019's "Baseline"), the probe's L2 chosen
//   pretrain, pretrain_head     the supervised pretraining baseline (eval/pretrain_baseline.hpp:
//                               cross-entropy over all training classes, trained into
//                               RUN/baselines/pretrain), fine-tuned per episode from a head
//                               initialised on the support prototypes: every parameter but the
//                               embeddings, or the head alone; lr and steps chosen
//   nearest_class_mean,         the classifiers on the pretrained encoder: the strong
//   linear_probe                baseline of Tian et al. 2020
// Queries are the new classes' own texts of the run's files, never seen in training.
// Torch-free on purpose, like cold_start.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics/confidence.hpp"

namespace ml::runtime {
class ProcessGroup;  // runtime/distributed.hpp
}

namespace ml::eval {

struct TextEvalOptions {
  std::string checkpoint;                  // run directory or checkpoint file of a text run
  std::vector<int> shots{1, 5};            // N-way: K support texts per class, each >= 1
  std::vector<int> steps{0, 1, 3, 5, 10};  // adaptation step counts to choose among, >= 0
  int episodes = 100;                      // N-way episodes per K, on validation and new classes
  // Learning rates the pretrain baselines fine-tune with, chosen among on the validation
  // classes; the run's meta.inner_lr is always added.
  std::vector<double> baseline_lrs{0.01, 0.1};
  // false: leave out the baselines on the pretrain run (pretrain, pretrain_head, linear_probe,
  // nearest_class_mean), which may first need a training run of the run's budget.
  bool pretrain = true;
  // Methods to evaluate (names as in TextMethodScore::method); empty = all.
  std::vector<std::string> methods;
  std::vector<int> many_way_shots{5, 10};  // many-way: K per class; empty = no many-way section
  int many_way_draws = 5;                  // seeded support draws per K, on each split
  std::string device = "auto";
  int threads = 0;  // CPU thread budget; 0 = runtime::thread_budget
  // Under torchrun: the episodes and draws are shared out over the launch's ranks
  // (runtime/work_share.hpp), every rank gets the whole result; nullptr: one process.
  runtime::ProcessGroup* group = nullptr;
};

struct TextMethodScore {
  std::string method;   // see the header comment
  std::string setting;  // "3 steps", "l2 0.1", "lr 0.1, 5 steps", "" (chosen on validation)
  int shots = 0;
  metrics::Interval accuracy;  // over the new classes' episodes (many-way: draws)
  // The chosen setting on the validation classes' tasks, where it was chosen (n = 0 when the
  // validation classes gave no task and the default setting was used).
  metrics::Interval validation;
  // The run's method minus this one, paired by episode or draw (false for the run's own method,
  // or when it is not evaluated).
  bool compared = false;
  metrics::Interval run_minus_this;
};

// The many-way task at one K.
struct ManyWayShot {
  int shots = 0;
  std::int64_t classes = 0;             // M: the new classes with K + 1 distinct texts
  std::int64_t validation_classes = 0;  // the same on the validation classes (0: not chosen)
  double queries = 0;                   // query texts per draw (mean over draws)
  // Why it could not be scored ("" when it was): fewer than two new classes can give K + 1
  // distinct texts.
  std::string skipped;
  std::vector<TextMethodScore> scores;  // the run's method first
};

struct TextEvalResult {
  std::string checkpoint;
  std::string algorithm;
  int ways = 0, queries_per_class = 0, episodes = 0;
  std::int64_t new_classes = 0, validation_classes = 0;
  // Why settings could not be chosen on the validation classes ("" when they were): the
  // defaults (meta.adapt_steps, meta.inner_lr, an L2 of 1) were used instead.
  std::string not_chosen;
  // The pretrain encoder's checkpoint and how it came ("trained" | "resumed" | "reused" |
  // "run" when the run is itself pretrain); both "" with --no-pretrain.
  std::string pretrain_checkpoint, pretrain_source;
  std::vector<TextMethodScore> scores;  // N-way, by K, the run's method first
  int many_way_draws = 0;
  std::vector<ManyWayShot> many_way;  // one per many-way K
};

// ConfigError/UsageError for options out of range, an unknown --methods name or a checkpoint
// that is not a text run's; DataError when the new classes cannot give one N-way K-shot episode
// (naming why); the errors of ensure_pretrain_baseline when the pretrain baseline is trained.
TextEvalResult evaluate_text_run(const TextEvalOptions& options);

nlohmann::json to_json(const TextEvalResult& result);
std::string format_table(const TextEvalResult& result);

}  // namespace ml::eval
