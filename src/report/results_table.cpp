// The report's tables: see results_table.hpp.
#include "report/results_table.hpp"

#include <algorithm>
#include <cmath>

#include "config/choices.hpp"
#include "config/config.hpp"
#include "util/strings.hpp"

namespace ml::report {

using nlohmann::json;

bool ResultsTable::is_baseline(const std::string& method) const {
  return std::find(baselines.begin(), baselines.end(), method) != baselines.end() ||
         std::find(baseline_runs.begin(), baseline_runs.end(), method) != baseline_runs.end();
}

ResultsTable results_table(const eval::ColdStartResult& result) {
  ResultsTable table;
  for (const auto& c : result.cells)
    for (const auto& cmp : c.comparisons)
      if (!table.is_baseline(cmp.baseline)) table.baselines.push_back(cmp.baseline);
  for (const auto& run : result.runs)
    if (config::is_baseline_name(run.algorithm) && !table.is_baseline(run.method))
      table.baseline_runs.push_back(run.method);
  for (int k : result.shots) {
    std::vector<const eval::Cell*> best;
    for (std::size_t x = 0; x < result.metrics.size(); ++x)
      best.push_back(eval::best_cell(result, k, x));
    for (int s : result.steps)
      for (const auto& m : result.methods) {
        const eval::Cell* c = result.cell(m, k, s);
        if (!c) continue;
        ResultRow row;
        row.cell = c;
        for (std::size_t x = 0; x < best.size(); ++x)  // ties are all best
          row.best.push_back(best[x] &&
                             c->metrics[x].interval.mean == best[x]->metrics[x].interval.mean);
        table.rows.push_back(std::move(row));
      }
  }
  return table;
}

bool baseline_wins(const eval::Verdict& verdict, const ResultsTable& table) {
  return !verdict.best_method.empty() && table.is_baseline(verdict.best_method);
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
                            " steps at lr " + fixed(run.inner_lr, 4) + " on " + run.inner_params +
                            " parameters, K = " + config::support_name(run.support)}};
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
                              std::to_string(run.dropped_tasks) + " too small"},
                {"labels", run.label + " (" + r.label_kind + ")"}};
  if (!run.time_cutoff.empty()) data.facts.push_back({"time cutoff", run.time_cutoff});

  FactGroup protocol{"Protocol", {}};
  std::vector<std::string> metric_titles;
  for (const auto& m : r.metrics) metric_titles.push_back(m.title);
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
  if (table.baselines.empty())
    return "No baseline was evaluated: there is nothing to compare with.";
  std::vector<std::string> baseline_ks, significant_ks;
  int decided = 0;
  for (const auto& v : r.verdicts) {
    if (v.best_method.empty()) continue;
    ++decided;
    if (baseline_wins(v, table))
      baseline_ks.push_back("K=" + std::to_string(v.shots) + " (" + v.best_method + ")");
    else if (v.excludes_zero)
      significant_ks.push_back("K=" + std::to_string(v.shots) + " (vs " + v.against_method + ")");
  }
  if (decided == 0) return "No new task gave an episode at any K: there is nothing to conclude.";
  std::string s = baseline_ks.empty()
                      ? "At every K the best method is not a baseline. "
                      : "A baseline is the best method at " + join(baseline_ks, ", ") + ". ";
  if (significant_ks.empty())
    s += "At no K does a non-baseline method's lead exclude zero (95% CI of the paired "
         "difference).";
  else
    s += "The best method's lead excludes zero (95% CI of the paired difference) at " +
         join(significant_ks, ", ") + ".";
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
    json metrics = json::object(), paired = json::object(), best = json::array();
    for (std::size_t x = 0; x < c.metrics.size(); ++x) {
      metrics[c.metrics[x].metric] = eval::interval_json(c.metrics[x].interval);
      if (x < row.best.size() && row.best[x]) best.push_back(c.metrics[x].metric);
    }
    for (const auto& cmp : c.comparisons)
      if (cmp.baseline != c.method)
        paired[cmp.baseline][cmp.metric] = eval::interval_json(cmp.difference);
    j["rows"].push_back({{"shots", c.shots},
                         {"steps", c.steps},
                         {"method", c.method},
                         {"diverged_episodes", c.diverged_episodes},
                         {"metrics", metrics},
                         {"paired_difference", paired},
                         {"best_at_shots", best}});
  }
  j["verdicts"] = full.at("verdicts");
  for (std::size_t i = 0; i < result.verdicts.size(); ++i)
    j["verdicts"][i]["baseline_wins"] = baseline_wins(result.verdicts[i], table);
  return j;
}

}  // namespace ml::report
