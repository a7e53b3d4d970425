// `metalearn adapt` for a text run (data.text): one M-way adaptation to a set of classes the run
// may never have seen, M free of the task.label.ways it was meta-trained with
// (meta/class_head.hpp: the head starts from the support's prototypes, then the run's inner
// loop). The support is either K texts of each of the run's new classes (--all-new; the query
// is every other text of those classes, so accuracy before and after is measured), or every row
// of a CSV of labelled texts (--support-csv, the run's text and class or path columns; no
// query). --with-training-classes adds K texts of each training class from the run's data, so
// that the adapted model ranks known and new classes together. Writes one adapted text model
// (checkpoint format 4: run/checkpoint.hpp) that `metalearn predict` reads. Torch-free.
#pragma once

#include "inference/adaptation.hpp"

namespace ml::inference {

// The name of --all-new's adapted model (RUN/adapted/new_classes.mlckpt).
inline constexpr const char* kAllNewClassesTask = "new_classes";

// adapt() for a checkpoint of a text run. Throws UsageError for options a text run does not
// take (--task, --shots all, --shots with --support-csv, neither or both of --all-new and
// --support-csv, an adapted text model as the source), DataError for a CSV without the run's
// columns, fewer than 2 classes, or new classes that cannot give K support texts and a query
// text, NumericError when adaptation diverges; the errors of reading the checkpoint.
AdaptSummary adapt_text_run(const AdaptOptions& options);

}  // namespace ml::inference
