// The cold-start results arranged as the report's tables: one row per K, step count and method,
// which cells are the settings chosen on validation tasks (the verdict's two), and which methods
// are baselines. The HTML page, the Markdown file and the report's JSON are all
// written from this one arrangement, so the three never disagree.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/cold_start.hpp"

namespace ml::report {

struct ResultRow {
  const eval::Cell* cell = nullptr;
  // One of the settings chosen on validation tasks that the verdict at its K compares. Never
  // "the best on these tasks": that choice would be made on the very values reported.
  bool chosen = false;
};

struct ResultsTable {
  // Every baseline method (built-in, and runs trained as pretrain or scratch), in method order.
  std::vector<std::string> baselines;
  std::vector<ResultRow> rows;  // by K, then steps, then ColdStartResult::methods order

  // A method in baselines.
  bool is_baseline(const std::string& method) const;
};

ResultsTable results_table(const eval::ColdStartResult& result);

// The metrics the "All metrics" tables show (indices into ColdStartResult::metrics): all but
// those the query composition fixes at every K, which the tables' note names instead.
std::vector<std::size_t> shown_metrics(const eval::ColdStartResult& result);

// A metric's cell in those tables: its interval, or "fixed by the query composition" at a K
// where it is fixed.
std::string metric_cell_text(const eval::ColdStartResult& result, const eval::Cell& cell,
                             std::size_t metric_index);

// The cell's paired difference against the baseline chosen at its K, for `metric`; nullptr for
// the chosen baseline itself or when nothing was chosen.
const eval::Comparison* chosen_baseline_difference(const eval::Cell& cell,
                                                   const std::string& metric);

// True when the chosen baseline is significantly better on the new tasks than the chosen
// meta-learner (the 95% CI of the paired difference excludes 0): the report must say so plainly.
// A baseline whose mean is higher without significance is a tie, never called a win.
bool baseline_wins(const eval::Verdict& verdict, const ResultsTable& table);

// The run, data and protocol summary as labelled plain-text facts (each writer escapes them).
struct Fact {
  std::string label, value;
};
struct FactGroup {
  std::string title;  // "Run", "Data", "Protocol"
  std::vector<Fact> facts;
};
std::vector<FactGroup> summary_facts(const eval::ColdStartResult& result);

// One plain sentence over all K: at which K the chosen baseline beats the chosen meta-learner on
// the new tasks, and at which the difference's 95% CI excludes zero.
std::string conclusion_summary(const eval::ColdStartResult& result, const ResultsTable& table);

// The tables as JSON (report.json): the run summary, the metrics, and per row every metric's
// interval, the paired differences against the chosen baseline and whether it is a chosen
// setting; then the choices and the verdicts. NaN is null.
nlohmann::json results_json(const eval::ColdStartResult& result, const ResultsTable& table);

}  // namespace ml::report
