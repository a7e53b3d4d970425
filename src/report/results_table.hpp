// The cold-start results arranged as the report's tables: one row per K, step count and method,
// which cells are best at their K for each metric, and which methods are the baselines the
// others are paired against. The HTML page, the Markdown file and the report's JSON are all
// written from this one arrangement, so the three never disagree.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/cold_start.hpp"

namespace ml::report {

struct ResultRow {
  const eval::Cell* cell = nullptr;
  // Per metric (ColdStartResult::metrics order): the best mean at this K (ties are all best;
  // none when the query composition fixes the metric at this K).
  std::vector<bool> best;
};

struct ResultsTable {
  // Methods the cells carry paired comparisons against, in the order first met.
  std::vector<std::string> baselines;
  // Other evaluated runs trained as a baseline (meta.algorithm pretrain or scratch, e.g. a
  // pretrain with head-only fine-tuning): no comparison columns, but a baseline all the same.
  std::vector<std::string> baseline_runs;
  std::vector<ResultRow> rows;  // by K, then steps, then ColdStartResult::methods order

  // A method in baselines or baseline_runs.
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

// True when the verdict's best method is a baseline: the report must say so plainly.
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

// One plain sentence over all K: which K a baseline wins at, or that the best method is never
// a baseline, and at how many K the best method's lead excludes zero.
std::string conclusion_summary(const eval::ColdStartResult& result, const ResultsTable& table);

// The tables as JSON (report.json): the run summary, the metrics, and per row every metric's
// interval, the paired differences against each baseline and the metrics it is best in; then
// the verdicts. NaN is null.
nlohmann::json results_json(const eval::ColdStartResult& result, const ResultsTable& table);

}  // namespace ml::report
