// The explanation page of `metalearn explain --report`: one self-contained HTML page (the
// report's inline style, SVG bar charts, no network access) with what was explained and how,
// the global importance of each feature (mean |attribution| over the rows), before against
// after adaptation when there is a model before it, and the attributions of the highest-scored
// rows.
#pragma once

#include <string>

#include "explain/explanation.hpp"

namespace ml::report {

// The page, each row chart holding its `top` largest attributions. The root element carries
// data-charts="N" (the number of <svg class="chart"> in it), as the cold-start report's does,
// so scripts/check_report.sh checks it the same way.
std::string render_explanation_html(const explain::Explanation& explanation, int top);

// Writes the page to `path` atomically (util/atomic_file.hpp). Throws FileWriteError.
void write_explanation_report(const explain::Explanation& explanation, int top,
                              const std::string& path);

}  // namespace ml::report
