// The report's tables: see results_table.hpp.
#include "report/results_table.hpp"

#include <algorithm>
#include <cmath>

#include "config/choices.hpp"
#include "util/strings.hpp"

namespace ml::report {

using nlohmann::json;

bool ResultsTable::is_baseline(const std::string& method) const {
  return std::find(baselines.begin(), baselines.end(), method) != baselines.end();
}

ResultsTable results_table(const eval::ColdStartResult& result) {
  ResultsTable table;
  for (const auto& m : result.method_info)
    if (m.baseline) table.baselines.push_back(m.name);
  for (int k : result.shots)
    for (int s : result.steps)
      for (const auto& m : result.methods) {
        const eval::Cell* c = result.cell(m, k, s);
        if (!c) continue;
        ResultRow row;
        row.cell = c;
        row.chosen = result.task_role == "new" && result.chosen(*c);
        table.rows.push_back(std::move(row));
      }
  return table;
}

std::vector<std::size_t> shown_metrics(const eval::ColdStartResult& result) {
  std::vector<std::size_t> shown;
  for (std::size_t x = 0; x < result.metrics.size(); ++x)
    if (!result.metrics[x].fixed_by_query) shown.push_back(x);
  return shown;
}

std::string metric_cell_text(const eval::ColdStartResult& result, const eval::Cell& cell,
                             std::size_t metric_index) {
  if (result.fixed_by_query(result.metrics[metric_index].name, cell.shots))
    return "fixed by the query composition";
  return metrics::format_interval(cell.metrics[metric_index].interval, 3);
}

const eval::Comparison* chosen_baseline_difference(const eval::Cell& cell,
                                                   const std::string& metric) {
  for (const auto& c : cell.comparisons)
    if (c.metric == metric) return &c;
  return nullptr;
}

bool baseline_wins(const eval::Verdict& verdict, const ResultsTable& table) {
  return !verdict.compared_method.empty() && verdict.excludes_zero &&
         table.is_baseline(verdict.best_method);
}

namespace {

std::string ints(const std::vector<int>& v) {
  std::vector<std::string> parts;
  for (int x : v) parts.push_back(std::to_string(x));
  return join(parts, ", ");
}

std::string count(std::int64_t n) {
  return with_thousands(n);
}

}  // namespace

std::vector<FactGroup> summary_facts(const eval::ColdStartResult& r) {
  const eval::RunSummary& run = r.run;
  FactGroup model{"Run", {}};
  model.facts = {
      {"run directory", r.run_dir},
      {"checkpoint", r.checkpoint_path},
      {"algorithm", r.algorithm},
      {"model", run.model},
      {"meta-training", count(run.trained_iterations) + " of " + count(run.meta_iterations) +
                            " iterations, inner loop " + std::to_string(run.inner_steps) +
                            " steps at lr " + short_number(run.inner_lr) + " on " +
                            run.inner_params + " parameters, K = " + std::to_string(run.support)}};
  if (!r.pretrain_source.empty())
    model.facts.push_back(
        {"pretrain baseline",
         r.pretrain_source +
             (r.pretrain_checkpoint.empty() ? std::string() : ", " + r.pretrain_checkpoint)});

  FactGroup data{"Data", {}};
  data.facts = {{"files", join(run.data_files, ", ")},
                {"rows", count(run.rows_kept) + " kept of " + count(run.rows_read) + " read (" +
                             count(run.rows_rejected) + " rejected)"},
                {"users / items", count(run.users) + " / " + count(run.items)},
                {"tasks by", run.task_column},
                {"tasks", count(run.tasks) + ": " + std::to_string(run.train_tasks) + " train, " +
                              std::to_string(run.validation_tasks) + " validation, " +
                              std::to_string(r.new_tasks) + " new (held out), " +
                              std::to_string(run.dropped_tasks) + " dropped" +
                              (run.dropped_by_cause.empty()
                                   ? std::string()
                                   : " (" + tasks::drop_counts_text(run.dropped_by_cause) + ")")},
                {"labels", run.label + " (" + r.label_kind + ")"}};
  if (!run.time_cutoff.empty()) data.facts.push_back({"time cutoff", run.time_cutoff});

  FactGroup protocol{"Protocol", {}};
  std::vector<std::string> metric_titles;
  for (const auto& m : r.metrics)
    metric_titles.push_back(m.title +
                            (m.fixed_by_query ? " (fixed by the query composition)" : ""));
  const std::string primary =
      r.metrics.empty()
          ? ""
          : r.metrics.front().title +
                (r.metrics.front().higher_is_better ? " (higher is better)" : " (lower is better)");
  protocol.facts = {{"methods", join(r.methods, ", ")},
                    {"shots (K)", ints(r.shots)},
                    {"adaptation steps", ints(r.steps)},
                    {"episodes", std::to_string(r.episodes) + " per task and K, query " +
                                     std::to_string(r.query)},
                    {"main metric", primary},
                    {"metrics", join(metric_titles, ", ")},
                    {"intervals", "95% Student t over tasks; differences paired per task"},
                    {"eval time", fixed(r.seconds, 1) + " s"}};
  return {model, data, protocol};
}

std::string conclusion_summary(const eval::ColdStartResult& r, const ResultsTable& table) {
  if (r.task_role != "new")
    return "An exploration of the validation tasks: the choices are made on these values, so "
           "they carry no verdict. Evaluate the new tasks (--tasks new) for one.";
  if (table.baselines.empty())
    return "No baseline was evaluated: there is nothing to compare with.";
  // Per K: a significant difference either way, or none (and then whose mean is higher).
  std::vector<std::string> baseline_ks, significant_ks, tied_ks, baseline_ahead_ks;
  for (const auto& v : r.verdicts) {
    if (v.compared_method.empty()) continue;
    const std::string k = "K=" + std::to_string(v.shots);
    const bool baseline_ahead = table.is_baseline(v.best_method);
    if (baseline_wins(v, table))
      baseline_ks.push_back(k + " (" + v.against_method + " over " + v.compared_method + ")");
    else if (v.excludes_zero)
      significant_ks.push_back(k + " (" + v.compared_method + " over " + v.against_method + ")");
    else {
      tied_ks.push_back(k);
      if (baseline_ahead) baseline_ahead_ks.push_back(k);
    }
  }
  if (baseline_ks.empty() && significant_ks.empty() && tied_ks.empty())
    return "Nothing could be chosen on validation tasks and compared on new tasks: there is no "
           "verdict (the tables are exploration only).";
  std::string s = "Settings chosen on validation tasks, scored once on the new tasks. ";
  if (!baseline_ks.empty())
    s += "The chosen baseline is significantly better than the chosen meta-learner at " +
         join(baseline_ks, ", ") + ". ";
  if (!significant_ks.empty())
    s += "The chosen meta-learner is significantly better than the chosen baseline at " +
         join(significant_ks, ", ") + ". ";
  if (!tied_ks.empty()) {
    s += "No significant difference at " + join(tied_ks, ", ") +
         " (the 95% CI of the paired difference includes 0";
    if (!baseline_ahead_ks.empty())
      s += "; the baseline's mean is the higher at " + join(baseline_ahead_ks, ", ");
    s += ").";
  }
  if (s.back() == ' ') s.pop_back();
  return s;
}

json results_json(const eval::ColdStartResult& result, const ResultsTable& table) {
  const json full = eval::to_json(result);
  json j;
  for (const char* key : {"checkpoint", "run_dir", "algorithm", "label_kind", "primary_metric",
                          "metrics", "grid", "new_tasks", "pretrain", "run", "seconds"})
    j[key] = full.at(key);
  j["baselines"] = table.baselines;
  j["rows"] = json::array();
  for (const auto& row : table.rows) {
    const eval::Cell& c = *row.cell;
    json metrics = json::object(), paired = json::object();
    for (std::size_t x = 0; x < c.metrics.size(); ++x) {
      metrics[c.metrics[x].metric] = eval::interval_json(c.metrics[x].interval);
      metrics[c.metrics[x].metric]["fixed_by_query"] =
          result.fixed_by_query(c.metrics[x].metric, c.shots);
    }
    for (const auto& cmp : c.comparisons) {
      paired["baseline"] = cmp.baseline;
      paired["baseline_steps"] = cmp.baseline_steps;
      paired[cmp.metric] = eval::interval_json(cmp.difference);
    }
    j["rows"].push_back({{"shots", c.shots},
                         {"steps", c.steps},
                         {"method", c.method},
                         {"diverged_episodes", c.diverged_episodes},
                         {"metrics", metrics},
                         {"paired_difference_vs_chosen_baseline", paired},
                         {"chosen_on_validation", row.chosen}});
  }
  j["protocol"] = full.at("protocol");
  j["choices"] = full.at("choices");
  j["verdicts"] = full.at("verdicts");
  for (std::size_t i = 0; i < result.verdicts.size(); ++i)
    j["verdicts"][i]["baseline_wins"] = baseline_wins(result.verdicts[i], table);
  return j;
}

}  // namespace ml::report
