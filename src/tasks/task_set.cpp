// Task construction and splitting: see task_set.hpp.
#include "tasks/task_set.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "tasks/episode_sampler.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"
#include "util/time_parse.hpp"

namespace ml::tasks {

using data::kNoId;
using data::kNoTime;

const char* role_name(TaskRole role) {
  switch (role) {
    case TaskRole::kTrain:
      return "train";
    case TaskRole::kValidation:
      return "validation";
    case TaskRole::kNew:
      return "new";
    case TaskRole::kDropped:
      return "dropped";
  }
  return "?";
}

const char* label_kind_name(LabelKind kind) {
  switch (kind) {
    case LabelKind::kBinary:
      return "binary";
    case LabelKind::kRegression:
      return "regression";
    case LabelKind::kMulticlass:
      return "multiclass";
  }
  return "?";
}

const char* drop_cause_text(DropCause cause) {
  switch (cause) {
    case DropCause::kNone:
      return "qualifying";
    case DropCause::kTooFewExamples:
      return "too small";
    case DropCause::kTooManyExamples:
      return "above task.max_examples";
    case DropCause::kOneLabelClass:
      return "one label class";
    case DropCause::kTooFewPositives:
      return "too few positives";
    case DropCause::kTooFewNegatives:
      return "too few negatives";
    case DropCause::kTooFewClasses:
      return "too few classes";
  }
  return "?";
}

std::vector<std::pair<DropCause, int>> count_drop_causes(const std::vector<DropCause>& causes) {
  std::vector<std::pair<DropCause, int>> counts;
  for (DropCause cause : enum_values<DropCause>()) {
    const auto n = std::count(causes.begin(), causes.end(), cause);
    if (n > 0) counts.emplace_back(cause, static_cast<int>(n));
  }
  return counts;
}

std::string drop_counts_text(const std::vector<std::pair<DropCause, int>>& counts) {
  std::vector<std::string> parts;
  for (const auto& [cause, n] : counts)
    parts.push_back(std::to_string(n) + " " + drop_cause_text(cause));
  return join(parts, ", ");
}

std::vector<const Task*> TaskSet::with_role(TaskRole role) const {
  std::vector<const Task*> out;
  for (const auto& t : tasks)
    if (t.role == role) out.push_back(&t);
  return out;
}

const Task* TaskSet::find(const std::string& name) const {
  auto it = std::lower_bound(tasks.begin(), tasks.end(), name,
                             [](const Task& t, const std::string& n) { return t.name < n; });
  return it != tasks.end() && it->name == name ? &*it : nullptr;
}

LabelKind label_kind(const config::Config& config) {
  return label_kind(config.task.label.kind);
}

LabelKind label_kind(config::LabelKind kind) {
  switch (kind) {
    case config::LabelKind::kRegression:
      return LabelKind::kRegression;
    case config::LabelKind::kMulticlass:
      return LabelKind::kMulticlass;
    case config::LabelKind::kImplicit:
    case config::LabelKind::kEventBinary:
    case config::LabelKind::kThreshold:
      return LabelKind::kBinary;
  }
  return LabelKind::kBinary;
}

namespace {

constexpr std::uint64_t kNegativePurpose = 0x6e65676174697665ULL;  // "negative"
constexpr std::uint64_t kSplitPurpose = 0x73706c6974ULL;           // "split"

std::vector<bool> event_mask(const data::PurchaseLog& log, const std::vector<std::string>& names) {
  std::vector<bool> mask(log.events.size(), false);
  for (const auto& n : names)
    if (auto id = log.events.find(n)) mask[static_cast<std::size_t>(*id)] = true;
  return mask;
}

bool in_mask(const std::vector<bool>& mask, std::int32_t id) {
  return id != kNoId && static_cast<std::size_t>(id) < mask.size() &&
         mask[static_cast<std::size_t>(id)];
}

float regression_target(const data::PurchaseLog& log, std::size_t row, config::LabelTarget target) {
  switch (target) {
    case config::LabelTarget::kRating:
      return log.rating[row];
    case config::LabelTarget::kPrice:
      return log.price[row];
    case config::LabelTarget::kQuantity:
      return log.quantity[row];
    case config::LabelTarget::kSpend:
      break;
  }
  const float q = std::isnan(log.quantity[row]) ? 1.0f : log.quantity[row];
  return log.price[row] * q;
}

// Implicit positives (deduplicated per user and item) and sampled negatives for one task.
void implicit_examples(const data::PurchaseLog& log, const std::vector<std::size_t>& rows,
                       const std::vector<bool>& positive_events, bool filter_events,
                       std::int64_t cutoff, const config::LabelConfig& label, std::uint64_t seed,
                       Task& task, TaskSet& set) {
  const double ratio = label.negatives_per_positive;
  const bool exclude_only_label_window =
      label.negatives_exclude == config::NegativesExclude::kAfterCutoff;
  std::vector<std::int32_t> catalogue;
  std::unordered_map<std::int32_t, double> rows_of_item;  // popularity in this task
  // (user, item) pairs that may not be negatives: every interaction in the task, or only those
  // in the label window (at or after the cutoff).
  std::unordered_set<std::uint64_t> interacted;
  std::unordered_map<std::uint64_t, std::size_t> positive_of;  // (user, item) -> example index
  for (std::size_t row : rows) {
    std::int32_t u = log.user[row], i = log.item[row];
    if (u == kNoId || i == kNoId) continue;
    if (rows_of_item[i]++ == 0) catalogue.push_back(i);
    const bool before_cutoff =
        cutoff != kNoTime && (log.timestamp[row] == kNoTime || log.timestamp[row] < cutoff);
    if (!(exclude_only_label_window && before_cutoff)) interacted.insert(pair_key(u, i));
    if (filter_events && !in_mask(positive_events, log.event[row])) continue;
    if (before_cutoff) continue;
    auto [it, fresh] = positive_of.emplace(pair_key(u, i), task.examples.size());
    if (fresh)
      task.examples.push_back({static_cast<std::int64_t>(row), u, i, 1.0f, log.timestamp[row]});
    else if (log.timestamp[row] < task.examples[it->second].time)  // keep the first interaction
      task.examples[it->second] = {static_cast<std::int64_t>(row), u, i, 1.0f, log.timestamp[row]};
  }
  std::sort(catalogue.begin(), catalogue.end());
  task.positives = static_cast<std::int64_t>(task.examples.size());
  // "popularity": cumulative row counts over the catalogue, drawn by binary search.
  std::vector<double> cumulative;
  if (label.negative_sampling == config::NegativeSampling::kPopularity) {
    double total = 0;
    for (std::int32_t item : catalogue) cumulative.push_back(total += rows_of_item[item]);
  }

  Rng rng(derive_seed(seed, kNegativePurpose, hash_bytes(task.name.data(), task.name.size())));
  auto draw_candidate = [&]() -> std::int32_t {
    if (cumulative.empty()) return catalogue[uniform_index(rng, catalogue.size())];
    const double u = uniform01(rng) * cumulative.back();
    auto at = std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
    return catalogue[std::min(static_cast<std::size_t>(at), catalogue.size() - 1)];
  };
  std::unordered_set<std::uint64_t> drawn;
  std::unordered_set<std::int32_t> exhausted;  // users with no negative left to draw
  const std::size_t positives = task.examples.size();
  for (std::size_t p = 0; p < positives; ++p) {
    // Fractional ratios spread evenly: floor((p+1)r) - floor(pr) negatives for positive p.
    auto want = static_cast<std::int64_t>(std::floor((p + 1) * ratio) - std::floor(p * ratio));
    const Example positive = task.examples[p];
    for (std::int64_t n = 0; n < want; ++n) {
      bool found = false;
      for (int attempt = 0; attempt < 32 && !catalogue.empty(); ++attempt) {
        std::int32_t item = draw_candidate();
        std::uint64_t key = pair_key(positive.user, item);
        if (interacted.count(key) || !drawn.insert(key).second) continue;
        task.examples.push_back({-1, positive.user, item, 0.0f, positive.time});
        found = true;
        break;
      }
      if (!found && !exhausted.count(positive.user)) {
        // Rejection sampling gave up (the user saw most of the catalogue): draw from the items
        // still possible, so a negative is short only when none is left.
        std::vector<std::int32_t> left;
        for (std::int32_t item : catalogue) {
          std::uint64_t key = pair_key(positive.user, item);
          if (!interacted.count(key) && !drawn.count(key)) left.push_back(item);
        }
        if (left.empty()) {
          exhausted.insert(positive.user);
        } else {
          std::int32_t item = left[uniform_index(rng, left.size())];
          drawn.insert(pair_key(positive.user, item));
          task.examples.push_back({-1, positive.user, item, 0.0f, positive.time});
          found = true;
        }
      }
      if (found) {
        ++task.negatives;
        ++set.sampled_negatives;
      } else {
        ++set.negatives_short;
      }
    }
  }
}

// Event labels: per (user, item) the pair is positive if any positive event occurred; the
// example takes the pair's earliest row (the moment of decision), so features of the
// purchase row itself cannot leak the label.
void event_examples(const data::PurchaseLog& log, const std::vector<std::size_t>& rows,
                    const std::vector<bool>& positive, const std::vector<bool>& negative,
                    std::int64_t cutoff, Task& task) {
  const bool pairs = log.has_user() && log.has_item();
  std::unordered_map<std::uint64_t, std::size_t> pair_index;
  for (std::size_t row : rows) {
    bool pos = in_mask(positive, log.event[row]);
    if (!pos && !in_mask(negative, log.event[row])) continue;
    if (cutoff != kNoTime && (log.timestamp[row] == kNoTime || log.timestamp[row] < cutoff))
      continue;
    Example e{static_cast<std::int64_t>(row), log.user[row], log.item[row], pos ? 1.0f : 0.0f,
              log.timestamp[row]};
    if (pairs && e.user != kNoId && e.item != kNoId) {
      auto [it, fresh] = pair_index.emplace(pair_key(e.user, e.item), task.examples.size());
      if (!fresh) {
        Example& kept = task.examples[it->second];
        float label = std::max(kept.label, e.label);
        if (e.time < kept.time) kept = e;
        kept.label = label;
        continue;
      }
    }
    task.examples.push_back(e);
  }
  for (const auto& e : task.examples) (e.label > 0.5f ? task.positives : task.negatives)++;
}

}  // namespace

TaskSet build_tasks(const data::PurchaseLog& log, const config::Config& config) {
  TaskSet set;
  set.kind = label_kind(config);
  const auto& label = config.task.label;
  if (!config.split.time_cutoff.empty())
    set.cutoff = *parse_timestamp(config.split.time_cutoff, TimeFormat::kAuto);

  std::vector<std::vector<std::size_t>> rows_of(log.tasks.size());
  for (std::size_t r = 0; r < log.size(); ++r) {
    if (log.task[r] != kNoId) rows_of[static_cast<std::size_t>(log.task[r])].push_back(r);
    if (set.cutoff != kNoTime && log.timestamp[r] != kNoTime && log.timestamp[r] < set.cutoff)
      ++set.rows_before_cutoff;
  }
  const auto positive = event_mask(log, label.positive_events);
  const auto negative = event_mask(log, label.negative_events);
  const bool filter_events = log.events.size() > 0;

  for (std::size_t t = 0; t < rows_of.size(); ++t) {
    Task task;
    task.id = static_cast<std::int32_t>(t);
    task.name = log.tasks.name(task.id);
    const auto& rows = rows_of[t];
    if (label.kind == config::LabelKind::kImplicit) {
      implicit_examples(log, rows, positive, filter_events, set.cutoff, label, config.seed, task,
                        set);
    } else if (label.kind == config::LabelKind::kEventBinary) {
      event_examples(log, rows, positive, negative, set.cutoff, task);
    } else {
      std::unordered_map<std::int32_t, std::int64_t> class_counts;
      for (std::size_t row : rows) {
        if (set.cutoff != kNoTime &&
            (log.timestamp[row] == kNoTime || log.timestamp[row] < set.cutoff))
          continue;
        float y;
        if (label.kind == config::LabelKind::kRegression ||
            label.kind == config::LabelKind::kThreshold) {
          y = regression_target(log, row, label.target);
          if (!std::isfinite(y)) continue;
          if (label.kind == config::LabelKind::kThreshold) {
            y = y >= label.threshold ? 1.0f : 0.0f;
            (y > 0.5f ? task.positives : task.negatives)++;
          }
        } else {
          if (log.label_class[row] == kNoId) continue;
          y = static_cast<float>(log.label_class[row]);
          ++class_counts[log.label_class[row]];
        }
        task.examples.push_back(
            {static_cast<std::int64_t>(row), log.user[row], log.item[row], y, log.timestamp[row]});
      }
      const std::int64_t per_class =
          config::min_episode_examples(config.task.support, config.task.query);
      for (const auto& [c, count] : class_counts)
        if (count >= per_class) task.eligible_classes.push_back(c);
      std::sort(task.eligible_classes.begin(), task.eligible_classes.end());
    }
    if (task.examples.empty()) continue;
    set.tasks.push_back(std::move(task));
  }
  std::sort(set.tasks.begin(), set.tasks.end(),
            [](const Task& a, const Task& b) { return a.name < b.name; });

  EpisodeSampler sampler(set.kind, episode_shape(config.task), config.seed);
  const int min_examples = config.task.min_examples;
  for (auto& task : set.tasks) {
    DropReason why = sampler.diagnose(task);
    const auto n = static_cast<int>(task.examples.size());
    if (why.cause == DropCause::kNone && n < min_examples)
      why = {DropCause::kTooFewExamples,
             std::to_string(n) +
                 " examples, below task.min_examples = " + std::to_string(min_examples)};
    if (why.cause == DropCause::kNone && config.task.max_examples > 0 &&
        n > config.task.max_examples)
      why = {DropCause::kTooManyExamples, std::to_string(n) +
                                              " examples, above task.max_examples = " +
                                              std::to_string(config.task.max_examples)};
    task.drop_cause = why.cause;
    task.drop_reason = std::move(why.text);
    task.role = task.drop_reason.empty() ? TaskRole::kTrain : TaskRole::kDropped;
  }
  return set;
}

void split_tasks(TaskSet& set, const config::Config& config) {
  const auto& split = config.split;
  std::vector<Task*> pool;
  for (auto& t : set.tasks)
    if (t.role != TaskRole::kDropped) t.role = TaskRole::kTrain;
  if (!split.new_tasks.empty()) {
    std::vector<std::string> names;
    for (const auto& t : set.tasks) names.push_back(t.name);
    for (const auto& name : split.new_tasks) {
      auto found = std::find_if(set.tasks.begin(), set.tasks.end(),
                                [&](const Task& t) { return t.name == name; });
      if (found == set.tasks.end()) {
        std::string message = "split.new_tasks: no task named '" + name + "' in the log";
        std::string suggestion = closest_match(name, names);
        if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
        throw DataError(message);
      }
      // A named new task is held out even when it is too small for full episodes: it must
      // never reach training, and adapt can still use what it has.
      found->role = TaskRole::kNew;
    }
  }
  for (auto& t : set.tasks)
    if (t.role == TaskRole::kTrain) pool.push_back(&t);
  Rng rng(derive_seed(config.seed, kSplitPurpose));
  shuffle(pool, rng);
  const auto n = static_cast<double>(pool.size());
  std::size_t next = 0;
  if (split.new_tasks.empty()) {
    auto count = static_cast<std::size_t>(std::lround(split.new_fraction * n));
    for (; next < count && next < pool.size(); ++next) pool[next]->role = TaskRole::kNew;
  }
  auto validation = static_cast<std::size_t>(std::lround(split.validation_fraction * n));
  for (std::size_t v = 0; v < validation && next < pool.size(); ++v, ++next)
    pool[next]->role = TaskRole::kValidation;
}

namespace {

std::string names_list(const std::vector<std::string>& names) {
  std::vector<std::string> shown;
  for (const auto& n : names) shown.push_back(quoted_value(n));
  return "[" + join(shown, ", ") + "]";
}

// The log's distinct event values, for messages: "view, cart, buy".
std::string events_text(const data::PurchaseLog& log) {
  std::vector<std::string> shown;
  for (std::size_t i = 0; i < log.events.size() && i < 12; ++i)
    shown.push_back(quoted_value(log.events.name(static_cast<std::int32_t>(i))));
  return log.events.size() == 0 ? "none"
                                : join(shown, ", ") + (log.events.size() > 12 ? ", ..." : "");
}

std::string window_text(const TaskSet& set, const config::Config& config) {
  return set.cutoff == kNoTime ? std::string()
                               : " at or after split.time_cutoff = " + config.split.time_cutoff;
}

// Why no task got an example, though rows have task keys.
std::string no_example_cause(const data::PurchaseLog& log, const TaskSet& set,
                             const config::Config& config) {
  const auto& label = config.task.label;
  auto in_window = [&](std::size_t r) {
    return set.cutoff == kNoTime || (log.timestamp[r] != kNoTime && log.timestamp[r] >= set.cutoff);
  };
  if (set.cutoff != kNoTime) {
    std::int64_t last = kNoTime;
    for (std::size_t r = 0; r < log.size(); ++r)
      if (log.task[r] != kNoId) last = std::max(last, log.timestamp[r]);
    if (last == kNoTime)
      return "split.time_cutoff = " + config.split.time_cutoff +
             ": no row with a task key has a timestamp, and examples come from the rows at or "
             "after the cutoff";
    if (last < set.cutoff)
      return "split.time_cutoff = " + config.split.time_cutoff + " is after the log's last time (" +
             format_iso8601(last) +
             "): examples come from the rows at or after the cutoff, and there are none";
  }
  const std::string where = window_text(set, config);
  switch (label.kind) {
    case config::LabelKind::kImplicit:
    case config::LabelKind::kEventBinary: {
      const bool events = log.events.size() > 0;
      const auto positive = event_mask(log, label.positive_events);
      const auto negative = event_mask(log, label.negative_events);
      bool any_positive = false, any_labelled = false, any_pair = false;
      for (std::size_t r = 0; r < log.size(); ++r) {
        if (log.task[r] == kNoId || !in_window(r)) continue;
        any_pair = any_pair || (log.user[r] != kNoId && log.item[r] != kNoId);
        any_positive = any_positive || !events || in_mask(positive, log.event[r]);
        any_labelled =
            any_labelled || in_mask(positive, log.event[r]) || in_mask(negative, log.event[r]);
      }
      if (label.kind == config::LabelKind::kImplicit && !any_pair)
        return "task.label.kind = \"implicit\": no row with a task key" + where +
               " has both a user and an item id";
      if (label.kind == config::LabelKind::kImplicit || !any_labelled) {
        if (!any_positive || label.kind == config::LabelKind::kImplicit)
          return "task.label.positive_events = " + names_list(label.positive_events) +
                 ": no row with a task key" + where +
                 " has such an event (the log's events: " + events_text(log) + ")";
        return "task.label.positive_events = " + names_list(label.positive_events) +
               " and negative_events = " + names_list(label.negative_events) +
               ": no row with a task key" + where +
               " has one of these events (the log's events: " + events_text(log) + ")";
      }
      break;
    }
    case config::LabelKind::kRegression:
    case config::LabelKind::kThreshold:
      return "task.label.target = \"" + enum_name(label.target) + "\": no row with a task key" +
             where + " has a value in its column";
    case config::LabelKind::kMulticlass:
      return "task.label.class_column = " + label.class_column.describe() +
             ": no row with a task key" + where + " has a class";
  }
  return "no task has an example";
}

bool holds_out(const config::SplitConfig& split) {
  return split.new_fraction > 0 || split.validation_fraction > 0;
}

}  // namespace

std::string training_tasks_problem(const data::PurchaseLog& log, const TaskSet& set,
                                   const config::Config& config) {
  const auto& cols = config.data.columns;
  const std::string task_column =
      "data.columns.task = " + cols.task.describe() +
      (cols.task_from == config::ColumnSource::kLog
           ? std::string()
           : " (from the " + enum_name(cols.task_from) + " side table)");
  std::vector<const Task*> qualifying;
  for (const auto& t : set.tasks)
    if (t.drop_cause == DropCause::kNone) qualifying.push_back(&t);
  const auto train = set.with_role(TaskRole::kTrain);
  if (!train.empty()) {
    const bool held_out =
        !set.with_role(TaskRole::kNew).empty() || !set.with_role(TaskRole::kValidation).empty();
    if (qualifying.size() == 1 && !held_out && holds_out(config.split))
      return "only one task qualifies (" + quoted_value(qualifying[0]->name) + ", of " +
             std::to_string(log.tasks.size()) + " task key(s) in " + task_column +
             "): meta-learning needs several, to train on some and hold out others, but "
             "split.new_fraction = " +
             fixed(config.split.new_fraction, 2) +
             " and split.validation_fraction = " + fixed(config.split.validation_fraction, 2) +
             " of one task hold out none; group rows by a column with more values, or set both "
             "to 0 to train on the one task anyway";
    return "";
  }
  if (log.size() == 0) return "the log has no rows";
  if (std::all_of(log.task.begin(), log.task.end(), [](std::int32_t t) { return t == kNoId; }))
    return task_column + ": no row has a task key (the column is empty in every row" +
           (cols.task_from == config::ColumnSource::kLog
                ? std::string(")")
                : ", or the rows' ids have no value in the side table)");
  if (set.tasks.empty()) return no_example_cause(log, set, config);
  const auto& label = config.task.label;
  if (set.kind == LabelKind::kBinary && label.kind != config::LabelKind::kImplicit) {
    std::int64_t positives = 0, negatives = 0;
    for (const auto& t : set.tasks) {
      positives += t.positives;
      negatives += t.negatives;
    }
    const bool events = label.kind == config::LabelKind::kEventBinary;
    const std::string rule =
        events ? "task.label.positive_events = " + names_list(label.positive_events)
               : "task.label.threshold = " + fixed(label.threshold, 3);
    if (positives == 0)
      return rule + ": no example" + window_text(set, config) + " is positive" +
             (events ? " (the log's events: " + events_text(log) + ")" : std::string()) +
             ", so no task has both label classes";
    if (negatives == 0)
      return (events ? "task.label.negative_events = " + names_list(label.negative_events) : rule) +
             ": no example" + window_text(set, config) + " is negative" +
             (events ? " (the log's events: " + events_text(log) + ")" : std::string()) +
             ", so no task has both label classes";
  }
  const std::string episode = "task.support = " + config::support_name(config.task.support) +
                              " + task.query = " + std::to_string(config.task.query);
  if (qualifying.empty()) {
    std::vector<DropCause> causes;
    const Task* largest = &set.tasks.front();
    for (const auto& t : set.tasks) {
      causes.push_back(t.drop_cause);
      if (t.examples.size() > largest->examples.size()) largest = &t;
    }
    return "no task qualifies for " + episode + ": of " + std::to_string(set.tasks.size()) +
           " task(s) with examples, " + drop_counts_text(count_drop_causes(causes)) +
           "; the largest, " + quoted_value(largest->name) + " (" +
           std::to_string(largest->examples.size()) + " examples): " + largest->drop_reason +
           " (metalearn inspect --tasks lists every task)";
  }
  return "all " + std::to_string(qualifying.size()) + " qualifying task(s) for " + episode +
         " are held out (" + std::to_string(set.with_role(TaskRole::kNew).size()) + " new, " +
         std::to_string(set.with_role(TaskRole::kValidation).size()) +
         " validation): none is left to train on; lower split.new_fraction / "
         "split.validation_fraction or name fewer split.new_tasks";
}

void require_training_tasks(const data::PurchaseLog& log, const TaskSet& set,
                            const config::Config& config) {
  const std::string problem = training_tasks_problem(log, set, config);
  if (!problem.empty()) throw DataError(problem);
  const auto& split = config.split;
  std::size_t qualifying = 0;
  for (const auto& t : set.tasks) qualifying += t.drop_cause == DropCause::kNone ? 1 : 0;
  if (split.new_tasks.empty() && split.new_fraction > 0 && set.with_role(TaskRole::kNew).empty())
    spdlog::warn(
        "split.new_fraction = {} of {} qualifying task(s) holds out no new task: eval and adapt "
        "--all-new have none to score",
        split.new_fraction, qualifying);
  if (split.validation_fraction > 0 && set.with_role(TaskRole::kValidation).empty())
    spdlog::warn(
        "split.validation_fraction = {} of {} qualifying task(s) holds out no validation task: "
        "the best checkpoint is the last weights and nothing chooses the adaptation steps",
        split.validation_fraction, qualifying);
}

std::vector<bool> training_rows(const data::PurchaseLog& log, const TaskSet& set) {
  std::vector<bool> held_out(log.tasks.size(), false);
  for (const auto& t : set.tasks)
    if (t.role == TaskRole::kNew || t.role == TaskRole::kValidation)
      held_out[static_cast<std::size_t>(t.id)] = true;
  std::vector<bool> rows(log.size());
  for (std::size_t r = 0; r < log.size(); ++r) {
    bool in_held_out = log.task[r] != kNoId && held_out[static_cast<std::size_t>(log.task[r])];
    bool before_cutoff =
        set.cutoff == kNoTime || (log.timestamp[r] != kNoTime && log.timestamp[r] < set.cutoff);
    rows[r] = !in_held_out && before_cutoff;
  }
  return rows;
}

}  // namespace ml::tasks
