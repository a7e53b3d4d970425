// Log profiling for `metalearn inspect`: see log_profile.hpp.
#include "inspect/log_profile.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "pipeline/run_data.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/text_table.hpp"
#include "util/time_parse.hpp"

namespace ml::inspect {

Distribution distribution_of(std::vector<std::int64_t> values) {
  Distribution d;
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    return values[static_cast<std::size_t>(std::floor(q * static_cast<double>(values.size() - 1)))];
  };
  d.count = static_cast<std::int64_t>(values.size());
  d.min = values.front();
  d.max = values.back();
  d.p25 = at(0.25);
  d.median = at(0.5);
  d.p75 = at(0.75);
  d.p90 = at(0.9);
  d.p99 = at(0.99);
  double sum = 0;
  for (auto v : values) sum += static_cast<double>(v);
  d.mean = sum / static_cast<double>(values.size());
  return d;
}

LogProfile profile_log(const config::Config& config) {
  if (config.text_run())
    throw UsageError("profile_log reads purchase logs; a text run (data.text.column = \"" +
                     config.data.text.column + "\") is profiled by inspect::profile_text");
  LogProfile p;
  p.config_path = config.source_path;
  auto run = pipeline::prepare_run_data(config);
  const data::PurchaseLog& log = run->log;
  const tasks::TaskSet& set = run->tasks;
  p.load = run->report;
  p.rows_kept = static_cast<std::int64_t>(log.size());
  // Distinct ids in the log's rows: side tables intern their own ids into the same
  // dictionaries, so users/items that only appear there must not be counted.
  auto distinct = [](const std::vector<std::int32_t>& ids, std::size_t size) {
    std::vector<bool> seen(size, false);
    std::int64_t n = 0;
    for (auto id : ids)
      if (id != data::kNoId && !seen[static_cast<std::size_t>(id)]) {
        seen[static_cast<std::size_t>(id)] = true;
        ++n;
      }
    return n;
  };
  p.users = distinct(log.user, log.users.size());
  p.items = distinct(log.item, log.items.size());
  p.task_keys = static_cast<std::int64_t>(log.tasks.size());
  p.events = static_cast<std::int64_t>(log.events.size());
  std::int64_t first = data::kNoTime, last = data::kNoTime;
  for (auto t : log.timestamp) {
    if (t == data::kNoTime) continue;
    first = first == data::kNoTime ? t : std::min(first, t);
    last = std::max(last, t);
  }
  if (first != data::kNoTime) {
    p.first_time = format_iso8601(first);
    p.last_time = format_iso8601(last);
  }

  p.label_kind = config.task.label.kind;
  p.time_cutoff = config.split.time_cutoff;
  p.rows_before_cutoff = set.rows_before_cutoff;
  p.sampled_negatives = set.sampled_negatives;
  p.negatives_short = set.negatives_short;
  p.support = config.task.support;
  p.query = config.task.query;

  std::vector<std::int64_t> sizes;
  double sum = 0, sum2 = 0;
  p.target_min = INFINITY;
  p.target_max = -INFINITY;
  std::vector<bool> class_seen(log.classes.size(), false);
  for (const auto& t : set.tasks) {
    const auto n = static_cast<std::int64_t>(t.examples.size());
    sizes.push_back(n);
    p.examples += n;
    p.positives += t.positives;
    p.negatives += t.negatives;
    for (const auto& e : t.examples) {
      sum += e.label;
      sum2 += static_cast<double>(e.label) * e.label;
      p.target_min = std::min(p.target_min, static_cast<double>(e.label));
      p.target_max = std::max(p.target_max, static_cast<double>(e.label));
      if (set.kind == tasks::LabelKind::kMulticlass)
        class_seen[static_cast<std::size_t>(e.label)] = true;
    }
    RoleCount* role = t.role == tasks::TaskRole::kTrain        ? &p.train
                      : t.role == tasks::TaskRole::kValidation ? &p.validation
                      : t.role == tasks::TaskRole::kNew        ? &p.held_out_new
                                                               : &p.dropped;
    role->tasks += 1;
    role->examples += n;
    if (t.drop_reason.empty()) ++p.qualifying;
    if (t.role == tasks::TaskRole::kNew) p.new_task_names.push_back(t.name);
    p.tasks.push_back(
        {t.name, n, t.positives, t.negatives, tasks::role_name(t.role), t.drop_reason});
  }
  if (p.examples > 0) {
    p.target_mean = sum / static_cast<double>(p.examples);
    p.target_std = std::sqrt(
        std::max(0.0, sum2 / static_cast<double>(p.examples) - p.target_mean * p.target_mean));
  } else {
    p.target_min = p.target_max = 0;
  }
  p.classes = std::count(class_seen.begin(), class_seen.end(), true);
  p.task_sizes = distribution_of(sizes);

  p.dense_features = run->features.dense_dim();
  p.id_fields = run->features.id_fields();
  p.dense_feature_names = run->features.dense_names();
  const auto& tables = run->features.embeddings();
  for (std::size_t k = 0; k < tables.size(); ++k) {
    const auto& t = tables[k];
    EmbeddingProfile e{t.name,
                       t.table.file,
                       enum_name(t.table.join),
                       enum_name(t.table.missing),
                       t.rows,
                       t.table.dim,
                       {},
                       {},
                       {}};
    const bool by_item = t.table.join == config::JoinKey::kItem;
    std::vector<char> counted(3 * (by_item ? log.items.size() : log.users.size()), 0);
    for (const auto& task : set.tasks) {
      const int role = task.role == tasks::TaskRole::kTrain        ? 0
                       : task.role == tasks::TaskRole::kValidation ? 1
                       : task.role == tasks::TaskRole::kNew        ? 2
                                                                   : -1;
      if (role < 0) continue;
      EmbeddingProfile::Coverage& c = role == 0   ? e.train
                                      : role == 1 ? e.validation
                                                  : e.held_out_new;
      for (const auto& ex : task.examples) {
        const std::int32_t id = by_item ? ex.item : ex.user;
        if (id == data::kNoId) continue;
        char& seen = counted[static_cast<std::size_t>(role) * counted.size() / 3 +
                             static_cast<std::size_t>(id)];
        if (seen) continue;
        seen = 1;
        ++c.ids;
        if (run->encoder.embedding_row(k, id) < 0) ++c.missing;
      }
    }
    p.embeddings.push_back(std::move(e));
  }
  p.training_problem = tasks::training_tasks_problem(log, set, config);
  return p;
}

void to_json(nlohmann::json& j, const LogProfile& p) {
  auto dist = [](const Distribution& d) {
    return nlohmann::json{{"count", d.count}, {"min", d.min}, {"p25", d.p25}, {"median", d.median},
                          {"p75", d.p75},     {"p90", d.p90}, {"max", d.max}, {"mean", d.mean}};
  };
  auto role = [](const RoleCount& r) {
    return nlohmann::json{{"tasks", r.tasks}, {"examples", r.examples}};
  };
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& b : p.load.bad_rows)
    bad.push_back({{"file", b.file}, {"line", b.line}, {"reason", b.reason}});
  nlohmann::json side = nlohmann::json::array();
  for (const auto& s : p.load.side_tables)
    side.push_back({{"join", s.join},
                    {"files", s.files},
                    {"rows", s.rows},
                    {"rejected", s.rejected},
                    {"duplicates", s.duplicates},
                    {"duplicate_keys", s.duplicate_keys},
                    {"log_ids_matched", s.log_ids_matched},
                    {"log_ids_total", s.log_ids_total}});
  nlohmann::json embeddings = nlohmann::json::array();
  for (const auto& e : p.embeddings) {
    auto coverage = [](const EmbeddingProfile::Coverage& c) {
      return nlohmann::json{{"ids", c.ids}, {"missing", c.missing}};
    };
    embeddings.push_back({{"name", e.name},
                          {"file", e.file},
                          {"join", e.join},
                          {"missing_vector", e.missing},
                          {"rows", e.rows},
                          {"dim", e.dim},
                          {"train", coverage(e.train)},
                          {"validation", coverage(e.validation)},
                          {"new", coverage(e.held_out_new)}});
  }
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& t : p.tasks)
    tasks.push_back({{"name", t.name},
                     {"examples", t.examples},
                     {"positives", t.positives},
                     {"negatives", t.negatives},
                     {"role", t.role},
                     {"drop_reason", t.drop_reason}});
  nlohmann::json labels = {{"kind", enum_name(p.label_kind)}, {"examples", p.examples}};
  const tasks::LabelKind outputs = tasks::label_kind(p.label_kind);
  if (outputs == tasks::LabelKind::kBinary) {
    labels["positives"] = p.positives;
    labels["negatives"] = p.negatives;
    labels["positive_rate"] =
        p.examples ? static_cast<double>(p.positives) / static_cast<double>(p.examples) : 0.0;
    labels["sampled_negatives"] = p.sampled_negatives;
    labels["negatives_short"] = p.negatives_short;
  } else if (outputs == tasks::LabelKind::kRegression) {
    labels["target"] = {{"mean", p.target_mean},
                        {"std", p.target_std},
                        {"min", p.target_min},
                        {"max", p.target_max}};
  } else {
    labels["classes"] = p.classes;
  }
  j = {{"config", p.config_path},
       {"rows",
        {{"read", p.load.rows_read},
         {"kept", p.rows_kept},
         {"rejected", p.load.rows_rejected},
         {"rejected_by_reason", p.load.rejected_by_reason},
         {"bad_rows", bad},
         {"without_task", p.load.rows_without_task},
         {"before_cutoff", p.rows_before_cutoff}}},
       {"files", p.load.files},
       {"bytes", p.load.bytes},
       {"users", p.users},
       {"items", p.items},
       {"task_keys", p.task_keys},
       {"event_types", p.events},
       {"time_range", {{"first", p.first_time}, {"last", p.last_time}}},
       {"timestamps_read_as", p.load.timestamps_read_as},
       {"time_cutoff", p.time_cutoff},
       {"side_tables", side},
       {"labels", labels},
       {"task_sizes", dist(p.task_sizes)},
       {"episode",
        {{"support",
          p.support == config::kSupportAll ? nlohmann::json("all") : nlohmann::json(p.support)},
         {"query", p.query}}},
       {"qualifying_tasks", p.qualifying},
       {"split",
        {{"train", role(p.train)},
         {"validation", role(p.validation)},
         {"new", role(p.held_out_new)},
         {"dropped", role(p.dropped)},
         {"new_tasks", p.new_task_names}}},
       {"embeddings", embeddings},
       {"features",
        {{"dense", p.dense_features},
         {"id_fields", p.id_fields},
         {"dense_names", p.dense_feature_names}}},
       {"tasks", tasks},
       {"training_problem", p.training_problem}};
}

namespace {
std::string pct(std::int64_t part, std::int64_t whole) {
  return whole ? fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) + "%"
               : "-";
}
}  // namespace

void print_profile(const LogProfile& p, std::ostream& out, bool list_tasks) {
  auto row = [&](const std::string& key, const std::string& value) {
    out << "  " << pad_to_width(key, 24) << value << "\n";
  };
  auto n = [](std::int64_t v) { return with_thousands(v); };
  out << "Log\n";
  row("files", std::to_string(p.load.files.size()) + " (" + n(p.load.bytes) + " bytes)");
  row("rows read", n(p.load.rows_read));
  row("rows rejected",
      n(p.load.rows_rejected) + " (" + pct(p.load.rows_rejected, p.load.rows_read) + ")");
  for (const auto& [reason, count] : p.load.rejected_by_reason) row("  " + reason, n(count));
  for (const auto& b : p.load.bad_rows)
    out << "    " << b.file << ":" << b.line << ": " << b.reason << "\n";
  row("rows without task key", n(p.load.rows_without_task));
  row("users", n(p.users));
  row("items", n(p.items));
  row("task keys", n(p.task_keys));
  if (p.events) row("event types", n(p.events));
  if (!p.first_time.empty()) row("time range", p.first_time + " .. " + p.last_time);
  if (!p.load.timestamps_read_as.empty()) {
    std::vector<std::string> readings;
    for (TimeReading reading : enum_values<TimeReading>()) {
      const auto it = p.load.timestamps_read_as.find(enum_name(reading));
      if (it == p.load.timestamps_read_as.end()) continue;
      readings.push_back(std::string(time_reading_text(reading)) +
                         (p.load.timestamps_read_as.size() > 1 ? " (" + n(it->second) + ")" : ""));
    }
    row("timestamps read as",
        join(readings, ", ") + (p.load.timestamps_read_as.size() > 1 ? ": mixed units" : ""));
  }
  if (!p.time_cutoff.empty())
    row("time cutoff", p.time_cutoff + " (" + n(p.rows_before_cutoff) + " history rows before it)");
  for (const auto& s : p.load.side_tables)
    row(s.join + " table",
        n(s.rows) + " rows, " + n(s.log_ids_matched) + " of " + n(s.log_ids_total) + " log " +
            s.join + "s matched (" + pct(s.log_ids_matched, s.log_ids_total) + ")" +
            (s.rejected ? ", " + n(s.rejected) + " rejected" : "") +
            (s.duplicates == enum_name(config::DuplicateKeys::kFirst)
                 ? ", duplicates \"first\": " + n(s.duplicate_keys) + " later rows of an id ignored"
                 : ""));

  out << "\nLabels (" << enum_name(p.label_kind) << ")\n";
  const tasks::LabelKind outputs = tasks::label_kind(p.label_kind);
  row("examples", n(p.examples));
  if (outputs == tasks::LabelKind::kBinary) {
    row("positives", n(p.positives) + " (" + pct(p.positives, p.examples) + ")");
    row("negatives", n(p.negatives) + " (" + pct(p.negatives, p.examples) + ")");
    if (p.label_kind == config::LabelKind::kImplicit)
      row("sampled negatives",
          n(p.sampled_negatives) +
              (p.negatives_short ? " (" + n(p.negatives_short) + " could not be drawn)" : ""));
  } else if (outputs == tasks::LabelKind::kRegression) {
    row("target mean +- std", fixed(p.target_mean, 3) + " +- " + fixed(p.target_std, 3));
    row("target range", fixed(p.target_min, 3) + " .. " + fixed(p.target_max, 3));
  } else {
    row("classes", n(p.classes));
  }

  out << "\nTasks\n";
  const auto& d = p.task_sizes;
  row("tasks with examples", n(d.count));
  row("examples per task", "min " + n(d.min) + ", p25 " + n(d.p25) + ", median " + n(d.median) +
                               ", p75 " + n(d.p75) + ", p90 " + n(d.p90) + ", max " + n(d.max));
  row("qualifying", n(p.qualifying) + " of " + n(d.count) + " for support " +
                        config::support_name(p.support) + " + query " + std::to_string(p.query));
  auto role = [&](const char* name, const RoleCount& r) {
    row(name, n(r.tasks) + " tasks, " + n(r.examples) + " examples");
  };
  role("train", p.train);
  role("validation", p.validation);
  role("new (held out)", p.held_out_new);
  role("dropped", p.dropped);
  if (!p.new_task_names.empty()) {
    std::vector<std::string> shown(
        p.new_task_names.begin(),
        p.new_task_names.begin() +
            static_cast<std::ptrdiff_t>(std::min<std::size_t>(8, p.new_task_names.size())));
    row("new tasks", join(shown, ", ") + (p.new_task_names.size() > 8 ? ", ..." : ""));
  }

  out << "\nFeatures\n";
  row("dense", std::to_string(p.dense_features));
  row("id fields", std::to_string(p.id_fields));
  for (const auto& e : p.embeddings) {
    row("embedding table", e.name + ": " + n(e.rows) + " rows x " + std::to_string(e.dim) + " by " +
                               e.join + " id (" + e.file + ")");
    auto missing = [&](const char* split, const EmbeddingProfile::Coverage& c) {
      row("  " + std::string(split), n(c.missing) + " of " + n(c.ids) + " " + e.join +
                                         "s missing (" + pct(c.missing, c.ids) + "), given the " +
                                         e.missing + " vector");
    };
    missing("train tasks", e.train);
    missing("validation tasks", e.validation);
    missing("new tasks", e.held_out_new);
  }
  if (!p.training_problem.empty()) out << "\nTraining would stop: " << p.training_problem << "\n";

  if (list_tasks) {
    // Fixed minimum widths, so the listing of a long log streams without a first pass.
    auto task_line = [&](const std::string& name, const std::string& examples,
                         const std::string& pos, const std::string& neg, const std::string& role,
                         const std::string& why) {
      out << pad_to_width(name, 36) << pad_to_width(examples, 10, Align::kRight)
          << pad_to_width(pos, 10, Align::kRight) << pad_to_width(neg, 10, Align::kRight) << "  "
          << pad_to_width(role, 11) << why << "\n";
    };
    out << "\n";
    task_line("task", "examples", "pos", "neg", "role", "why dropped");
    for (const auto& t : p.tasks)
      task_line(t.name, std::to_string(t.examples), std::to_string(t.positives),
                std::to_string(t.negatives), t.role, t.drop_reason);
  }
}

}  // namespace ml::inspect
