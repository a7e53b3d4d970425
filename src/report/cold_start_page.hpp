// The cold-start report for people: one self-contained HTML page (inline CSS and SVG charts, no
// network access, a few lines of optional script), and the same tables as Markdown and JSON.
#pragma once

#include <string>
#include <vector>

#include "eval/cold_start.hpp"
#include "explain/explanation.hpp"
#include "report/training_log.hpp"

namespace ml::report {

// The page: run and data summary, conclusions, the main metric against adaptation steps (one
// chart per K) and against shots, the results table of the main metric with the best cell per
// K highlighted and paired differences against each baseline, all metrics, the training curves
// of `logs`, what adaptation taught each new task when `importance` is given (eval
// --importance: report/importance_section.hpp), and the new tasks per K. The root element
// carries data-charts="N" (the number of <svg class="chart"> in it) so a renderer check knows
// how many to expect.
std::string render_html(const eval::ColdStartResult& result, const std::vector<TrainingLog>& logs,
                        const explain::NewTaskImportance* importance = nullptr);

// The summary, conclusions and tables as GitHub-flavoured Markdown, and the importance section
// when given.
std::string render_markdown(const eval::ColdStartResult& result,
                            const explain::NewTaskImportance* importance = nullptr);

// The CSS colour of a method, the same in every chart: the baselines `pretrain` and `scratch`
// get orange and grey, other methods the colour-blind-safe Okabe-Ito palette in order.
std::string method_colour(const std::vector<std::string>& methods, const std::string& method);

struct ReportPaths {
  std::string html, markdown, json;
};

// The paths written for `html_path`: itself and the same name with .md and .json. UsageError
// when html_path ends in .md or .json (the files would overwrite each other).
ReportPaths report_paths(const std::string& html_path);

// Checks, before an evaluation, the files it will write: `json_out` ("" when not asked for) and
// the report's three for `html_path` ("" when not asked for). UsageError when two of them are
// one file (e.g. --json-out naming the report's .json, by any spelling of the path) or one is
// part of a run of `runs` (checkpoint arguments: its checkpoint, data or run directory's files,
// run/run_files.hpp); FileWriteError when one cannot be written where it is (check_writable).
void check_outputs(const std::string& json_out, const std::string& html_path,
                   const std::vector<std::string>& runs = {});

// Writes the three files, each atomically, creating the folder when needed (see
// util/atomic_file.hpp); DataError when one cannot be written. Training curves come from
// read_training_logs(result); `importance`, when given, goes into all three (the JSON's
// "importance": explain::to_json).
ReportPaths write_report(const eval::ColdStartResult& result, const std::string& html_path,
                         const explain::NewTaskImportance* importance = nullptr);

}  // namespace ml::report
