// The cold-start results as JSON and as a table for the terminal: see cold_start.hpp.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "config/config.hpp"
#include "eval/cold_start.hpp"
#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/text_table.hpp"

namespace ml::eval {

namespace {

using nlohmann::json;

json number(double v) {
  return std::isfinite(v) ? json(v) : json();
}

json shot_tasks_json(const ShotTasks& t) {
  json skipped = json::array();
  for (const auto& s : t.skipped)
    skipped.push_back({{"task", s.task}, {"reason", s.reason}, {"cause", enum_name(s.cause)}});
  return {{"shots", t.shots},
          {"evaluated", t.evaluated},
          {"skipped", skipped},
          {"fixed_by_query", t.fixed_by_query}};
}

}  // namespace

json interval_json(const metrics::Interval& i) {
  return {{"mean", number(i.mean)},
          {"lower", number(i.lower)},
          {"upper", number(i.upper)},
          {"half_width", number(i.half_width)},
          {"n", i.n}};
}

json to_json(const ColdStartResult& r) {
  json j;
  j["checkpoint"] = r.checkpoint_path;
  j["run_dir"] = r.run_dir;
  j["config_path"] = r.config_path.empty() ? json() : json(r.config_path);
  j["algorithm"] = r.algorithm;
  j["label_kind"] = r.label_kind;
  j["primary_metric"] = r.metrics.empty() ? json() : json(r.metrics.front().name);
  j["metrics"] = json::array();
  for (const auto& m : r.metrics)
    j["metrics"].push_back({{"name", m.name},
                            {"title", m.title},
                            {"higher_is_better", m.higher_is_better},
                            {"fixed_by_query", m.fixed_by_query}});
  j["grid"] = {{"shots", r.shots},     {"steps", r.steps},
               {"methods", r.methods}, {"episodes_per_task", r.episodes},
               {"query", r.query},     {"confidence_level", 0.95}};
  j["protocol"] =
      r.task_role == "new"
          ? "each family's setting (variant, steps) and the compared meta-learner and baseline "
            "are chosen on the validation tasks; the new tasks score the chosen settings once; "
            "cells are the full grid on the new tasks, an exploration never used to choose"
          : "exploration of the validation tasks: the choices are made on these values, so "
            "they carry no verdict";
  j["method_info"] = json::array();
  for (const auto& m : r.method_info)
    j["method_info"].push_back({{"method", m.name},
                                {"family", m.family},
                                {"inner_lr", number(m.inner_lr)},
                                {"l2", number(m.l2)},
                                {"baseline", m.baseline}});
  j["new_tasks"] = r.new_tasks;
  j["task_role"] = r.task_role;
  j["runs"] = json::array();
  for (const auto& run : r.runs)
    j["runs"].push_back({{"method", run.method},
                         {"algorithm", run.algorithm},
                         {"checkpoint", run.checkpoint_path},
                         {"run_dir", run.run_dir}});
  j["pretrain"] = {
      {"source", r.pretrain_source.empty() ? json() : json(r.pretrain_source)},
      {"checkpoint", r.pretrain_checkpoint.empty() ? json() : json(r.pretrain_checkpoint)}};
  j["tasks"] = json::array();
  for (const auto& t : r.tasks) j["tasks"].push_back(shot_tasks_json(t));
  j["validation_tasks"] = json::array();
  for (const auto& t : r.validation_tasks) j["validation_tasks"].push_back(shot_tasks_json(t));
  j["choices"] = json::array();
  for (const auto& c : r.choices)
    j["choices"].push_back({{"shots", c.shots},
                            {"family", c.family},
                            {"method", c.method},
                            {"steps", c.steps},
                            {"baseline", c.baseline},
                            {"validation", interval_json(c.validation)},
                            {"test", r.task_role == "new" ? interval_json(c.test) : json()},
                            {"excluded_diverged", c.excluded}});
  j["cells"] = json::array();
  for (const auto& c : r.cells) {
    const ShotTasks* tasks = r.tasks_at(c.shots);
    json cell = {{"method", c.method},
                 {"shots", c.shots},
                 {"steps", c.steps},
                 {"diverged_episodes", c.diverged_episodes}};
    json ms = json::object();
    for (const auto& m : c.metrics) {
      json per_task = json::array();
      for (std::size_t i = 0; i < m.per_task.size(); ++i)
        per_task.push_back({{"task", tasks ? json(tasks->evaluated.at(i)) : json()},
                            {"value", number(m.per_task[i].value)},
                            {"episodes", m.per_task[i].episodes}});
      json mj = interval_json(m.interval);
      mj["fixed_by_query"] = r.fixed_by_query(m.metric, c.shots);
      mj["per_task"] = per_task;
      ms[m.metric] = mj;
    }
    cell["metrics"] = ms;
    cell["chosen"] = r.chosen(c);
    json paired = json::object();
    for (const auto& cmp : c.comparisons) {
      paired[cmp.baseline]["steps"] = cmp.baseline_steps;
      paired[cmp.baseline][cmp.metric] = interval_json(cmp.difference);
    }
    cell["paired_difference_vs_chosen_baseline"] = paired;
    j["cells"].push_back(cell);
  }
  j["verdicts"] = json::array();
  for (const auto& v : r.verdicts) {
    json vj = {{"shots", v.shots},
               {"text", v.text},
               {"chosen_on", v.chosen_on.empty() ? json() : json(v.chosen_on)},
               {"validation_tasks", v.validation_tasks}};
    if (!v.best_method.empty()) {
      vj["best"] = {{"method", v.best_method},
                    {"steps", v.best_steps},
                    {"value", interval_json(v.best_value)}};
    }
    if (!v.compared_method.empty()) {
      vj["comparison"] = {{"method", v.compared_method},
                          {"steps", v.compared_steps},
                          {"value", interval_json(v.compared_value)},
                          {"against", v.against_method},
                          {"against_steps", v.against_steps},
                          {"against_value", interval_json(v.against_value)},
                          {"difference", interval_json(v.difference)},
                          {"excludes_zero", v.excludes_zero}};
    }
    j["verdicts"].push_back(vj);
  }
  const RunSummary& run = r.run;
  json dropped_by_cause = json::object();
  for (const auto& [cause, n] : run.dropped_by_cause) dropped_by_cause[enum_name(cause)] = n;
  j["run"] = {
      {"data_files", run.data_files},
      {"task_column", run.task_column},
      {"label", run.label},
      {"time_cutoff", run.time_cutoff.empty() ? json() : json(run.time_cutoff)},
      {"rows", {{"read", run.rows_read}, {"rejected", run.rows_rejected}, {"kept", run.rows_kept}}},
      {"users", run.users},
      {"items", run.items},
      {"tasks",
       {{"all", run.tasks},
        {"train", run.train_tasks},
        {"validation", run.validation_tasks},
        {"new", r.new_tasks},
        {"dropped", run.dropped_tasks},
        {"dropped_by_cause", dropped_by_cause}}},
      {"support", run.support == config::kSupportAll ? json("all") : json(run.support)},
      {"model", run.model},
      {"meta_iterations", run.meta_iterations},
      {"trained_iterations", run.trained_iterations},
      {"inner_steps", run.inner_steps},
      {"inner_lr", run.inner_lr},
      {"inner_params", run.inner_params}};
  j["seconds"] = r.seconds;
  return j;
}

std::string skipped_counts_text(const ShotTasks& tasks) {
  std::vector<tasks::DropCause> causes;
  for (const auto& s : tasks.skipped) causes.push_back(s.cause);
  return tasks::drop_counts_text(tasks::count_drop_causes(causes));
}

std::string fixed_by_query_note(const ColdStartResult& r) {
  std::vector<std::string> sentences;
  for (std::size_t x = 0; x < r.metrics.size(); ++x) {
    const MetricInfo& m = r.metrics[x];
    std::vector<std::string> at;
    for (int k : r.shots) {
      if (!r.fixed_by_query(m.name, k)) continue;
      // Every cell at K holds the same value; the first with one says it.
      std::string value = "n/a";
      for (const Cell& c : r.cells)
        if (c.shots == k && x < c.metrics.size() && c.metrics[x].interval.n > 0) {
          value = fixed(c.metrics[x].interval.mean, 3);
          break;
        }
      at.push_back(value + " at K=" + std::to_string(k));
    }
    if (at.empty()) continue;
    sentences.push_back(m.title + " is fixed by the query composition" +
                        (m.fixed_by_query ? "" : " at some K") + " (" + join(at, ", ") +
                        "): every scoring of every query list gives that value, so it says "
                        "nothing about the methods.");
  }
  return join(sentences, " ");
}

void write_json(const ColdStartResult& result, const std::string& path) {
  write_file_atomically(path, [&](std::ostream& out) { out << to_json(result).dump(2) << "\n"; });
}

std::string format_table(const ColdStartResult& r) {
  std::ostringstream o;
  if (r.metrics.empty()) return "";
  const MetricInfo& primary = r.metrics.front();
  const std::string& title = primary.title;
  const bool two_stages = r.task_role == "new";
  o << "cold-start evaluation of " << r.checkpoint_path << " (" << r.algorithm << ", "
    << r.label_kind << " labels): " << r.new_tasks << " " << r.task_role << " tasks, " << r.episodes
    << " episodes per task and K, query " << r.query << "\n";
  if (two_stages)
    o << "Exploration: the full grid on the new tasks, never used to choose; * marks the two "
         "settings chosen on validation tasks that the verdict compares.\n";
  else
    o << "Exploration of the validation tasks: the values the choices are made on.\n";
  o << title << " (" << (primary.higher_is_better ? "higher" : "lower")
    << " is better): mean ± 95% CI half width over tasks; vs chosen baseline: paired per-task "
       "difference (cell - baseline chosen at that K), mean [95% CI]\n\n";

  std::vector<std::string> header{"K", "steps", "method", "tasks", title, "vs chosen baseline"};
  std::vector<std::vector<std::string>> rows{header};
  std::vector<bool> group_start{false};
  for (int k : r.shots) {
    for (int s : r.steps) {
      bool first = true;
      for (const auto& m : r.methods) {
        const Cell* c = r.cell(m, k, s);
        if (!c) continue;
        const auto& iv = c->metrics.front().interval;
        std::vector<std::string> row{std::to_string(k), std::to_string(s), m, std::to_string(iv.n),
                                     metrics::format_interval(iv, 3)};
        const Comparison* cmp = c->comparisons.empty() ? nullptr : &c->comparisons.front();
        row.push_back(cmp ? metrics::format_difference(cmp->difference, 3) : "-");
        if (two_stages && r.chosen(*c)) row[2] += " *";
        if (c->diverged_episodes > 0) row[2] += " (!)";
        rows.push_back(row);
        group_start.push_back(first);
        first = false;
      }
    }
  }
  // Numbers (K, steps, tasks) right-aligned.
  const std::vector<Align> align{Align::kRight, Align::kRight, Align::kLeft, Align::kRight};
  const std::vector<std::string> lines = align_columns(rows, align);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i > 1 && group_start[i] && rows[i][0] != rows[i - 1][0]) o << "\n";
    o << lines[i] << "\n";
  }
  o << "\n";
  if (!r.choices.empty()) {
    o << "Chosen on validation tasks (each family's best variant and steps by " << title
      << "; settings with a diverged episode excluded)"
      << (two_stages ? ", then scored once on the new tasks" : "") << ":\n";
    std::vector<std::vector<std::string>> choice_rows{
        {"K", "family", "chosen", "steps", "validation", two_stages ? "new tasks" : ""}};
    for (const auto& c : r.choices)
      choice_rows.push_back({std::to_string(c.shots), c.family + (c.baseline ? " (baseline)" : ""),
                             c.method, std::to_string(c.steps),
                             metrics::format_interval(c.validation, 3),
                             two_stages ? metrics::format_interval(c.test, 3) : ""});
    for (const std::string& line :
         align_columns(choice_rows, {Align::kRight, Align::kLeft, Align::kLeft, Align::kRight}))
      o << "  " << line << "\n";
    o << "\n";
  }
  for (const auto& v : r.verdicts) o << v.text << "\n";
  for (const auto& t : r.tasks)
    if (!t.skipped.empty())
      o << "note: K=" << t.shots << ": " << t.skipped.size() << " of " << r.new_tasks << " "
        << r.task_role << " tasks cannot give an episode and were left out ("
        << skipped_counts_text(t) << "; e.g. '" << t.skipped.front().task
        << "': " << t.skipped.front().reason << ")\n";
  if (const std::string note = fixed_by_query_note(r); !note.empty()) o << "note: " << note << "\n";
  bool diverged = false;
  for (const auto& c : r.cells) diverged = diverged || c.diverged_episodes > 0;
  if (diverged)
    o << "note: (!) marks cells where some episodes gave NaN/Inf outputs; they are left out of "
         "the means (see diverged_episodes in --json)\n";
  return o.str();
}

}  // namespace ml::eval
