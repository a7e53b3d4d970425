// Text run profiling for `metalearn inspect`: see text_profile.hpp.
#include "inspect/text_profile.hpp"

#include <algorithm>
#include <cmath>

#include "features/tokenizer.hpp"
#include "pipeline/text_run_data.hpp"
#include "tasks/class_split.hpp"
#include "util/strings.hpp"
#include "util/text_table.hpp"

namespace ml::inspect {

namespace {

// Class names shown per split unless every one is asked for.
constexpr std::size_t kShownClasses = 10;

std::string pct(std::int64_t part, std::int64_t whole) {
  return whole == 0
             ? "0%"
             : fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) + "%";
}

nlohmann::json percentiles_json(const Distribution& p) {
  return {{"count", p.count}, {"min", p.min}, {"p50", p.median},
          {"p90", p.p90},     {"p99", p.p99}, {"max", p.max}};
}

std::string percentiles_text(const Distribution& p) {
  return "min " + with_thousands(p.min) + ", p50 " + with_thousands(p.median) + ", p90 " +
         with_thousands(p.p90) + ", p99 " + with_thousands(p.p99) + ", max " +
         with_thousands(p.max);
}

}  // namespace

TextProfile profile_text(const config::Config& config) {
  TextProfile p;
  p.config_path = config.source_path;
  const data::TextDataset dataset =
      data::load_text_dataset(pipeline::text_dataset_spec(config), p.load);
  p.dataset = data::summarize(dataset);
  std::vector<std::int64_t> per_class, groups_per_class;
  for (const auto& c : p.dataset.classes) {
    per_class.push_back(c.rows);
    groups_per_class.push_back(c.groups);
  }
  p.texts_per_class = distribution_of(per_class);
  p.groups_per_class = distribution_of(groups_per_class);
  const tasks::ClassSplit split = pipeline::split_text_classes(config, dataset);
  p.min_class_groups = pipeline::min_class_groups(config);
  for (auto part : {tasks::ClassSplitPart::kTrain, tasks::ClassSplitPart::kValidation,
                    tasks::ClassSplitPart::kNew})
    if (std::string why = pipeline::split_problem(config, split, part); !why.empty())
      p.split_problems.push_back(why);
  const std::vector<std::int64_t> usable = data::usable_groups_per_class(dataset);
  for (std::int32_t c : split.dropped)
    p.dropped.emplace_back(dataset.class_names[static_cast<std::size_t>(c)],
                           usable[static_cast<std::size_t>(c)]);
  for (std::int32_t label : dataset.label)
    if (std::find(split.dropped.begin(), split.dropped.end(), label) != split.dropped.end())
      ++p.dropped_rows;
  const features::Tokenizer tokenizer = config.model.type == config::ModelType::kBackbone
                                            ? pipeline::backbone_tokenizer(config)
                                            : pipeline::train_tokenizer(config, dataset, split);
  p.max_len = pipeline::token_length(config);
  p.backbone_tokenizer = config.model.type == config::ModelType::kBackbone;
  p.vocab_pieces = tokenizer.piece_count();
  p.hash_buckets = tokenizer.hash_buckets();
  p.tokenizer_kind = tokenizer.kind();
  const tasks::ClassEpisodeShape shape = pipeline::class_episode_shape(config);
  p.ways = shape.ways;
  p.shots = shape.shots;
  p.queries = shape.queries;
  const std::vector<tasks::SplitSummary> summaries = tasks::summarize_split(dataset, split, shape);
  // Each row's split part, to encode every text once.
  std::vector<int> part_of_class(dataset.class_names.size(), -1);
  for (std::size_t s = 0; s < summaries.size(); ++s)
    for (std::int32_t c : split.classes(summaries[s].part))
      part_of_class[static_cast<std::size_t>(c)] = static_cast<int>(s);
  std::vector<std::vector<std::int64_t>> lengths(summaries.size());
  std::vector<features::EncodeStats> stats(summaries.size());
  for (std::size_t i = 0; i < dataset.size(); ++i) {
    const int s = part_of_class[static_cast<std::size_t>(dataset.label[i])];
    if (s < 0) continue;
    const auto ids = tokenizer.encode(dataset.texts[i], &stats[static_cast<std::size_t>(s)]);
    lengths[static_cast<std::size_t>(s)].push_back(static_cast<std::int64_t>(ids.size()));
  }
  for (std::size_t s = 0; s < summaries.size(); ++s) {
    TextSplitProfile t;
    t.part = tasks::split_part_name(summaries[s].part);
    t.summary = summaries[s];
    for (std::int32_t c : split.classes(summaries[s].part))
      t.class_names.push_back(dataset.class_names[static_cast<std::size_t>(c)]);
    std::sort(t.class_names.begin(), t.class_names.end());
    t.truncated = std::count_if(lengths[s].begin(), lengths[s].end(),
                                [&](std::int64_t n) { return n > p.max_len; });
    t.tokens = distribution_of(lengths[s]);
    t.pieces = stats[s].pieces;
    t.unknown_pieces = stats[s].unknown_pieces;
    t.oov_rate = stats[s].oov_rate();
    p.splits.push_back(std::move(t));
  }
  for (std::int32_t c : split.unassigned)
    p.unassigned.push_back(dataset.class_names[static_cast<std::size_t>(c)]);
  std::sort(p.unassigned.begin(), p.unassigned.end());
  return p;
}

void to_json(nlohmann::json& j, const TextProfile& p) {
  nlohmann::json bad = nlohmann::json::array();
  for (const auto& b : p.load.bad_rows)
    bad.push_back({{"file", b.file}, {"line", b.line}, {"reason", b.reason}});
  nlohmann::json splits = nlohmann::json::array();
  for (const auto& s : p.splits) {
    nlohmann::json short_classes = nlohmann::json::array();
    for (const auto& c : s.summary.short_classes)
      short_classes.push_back({{"name", c.name}, {"rows", c.rows}, {"groups", c.groups}});
    splits.push_back({{"part", s.part},
                      {"classes", s.summary.classes},
                      {"class_names", s.class_names},
                      {"rows", s.summary.rows},
                      {"groups", s.summary.groups},
                      {"eligible_classes", s.summary.eligible},
                      {"short_classes", short_classes},
                      {"problem", s.summary.problem},
                      {"tokens_per_text", percentiles_json(s.tokens)},
                      {"truncated", s.truncated},
                      {"truncated_share", s.tokens.count ? static_cast<double>(s.truncated) /
                                                               static_cast<double>(s.tokens.count)
                                                         : 0.0},
                      {"pieces", s.pieces},
                      {"unknown_pieces", s.unknown_pieces},
                      {"oov_rate", s.oov_rate}});
  }
  nlohmann::json dropped = nlohmann::json::array();
  for (const auto& [name, groups] : p.dropped)
    dropped.push_back({{"name", name}, {"groups", groups}});
  const auto& d = p.dataset;
  j = {{"config", p.config_path},
       {"kind", "text"},
       {"files", p.load.files},
       {"rows_read", p.load.rows_read},
       {"rows_rejected", p.load.rows_rejected},
       {"rejected_by_reason", p.load.rejected_by_reason},
       {"bad_rows", bad},
       {"non_utf8_cells", p.load.non_utf8_cells},
       {"rows", d.rows},
       {"classes", d.classes.size()},
       {"texts_per_class", percentiles_json(p.texts_per_class)},
       {"distinct_texts_per_class", percentiles_json(p.groups_per_class)},
       {"min_class_groups", p.min_class_groups},
       {"dropped_classes", dropped},
       {"dropped_rows", p.dropped_rows},
       {"split_problems", p.split_problems},
       {"duplicates",
        {{"groups", d.groups},
         {"duplicate_groups", d.duplicate_groups},
         {"largest_group", d.largest_group},
         {"rows_in_duplicate_groups", d.rows_in_duplicates + d.duplicate_groups},
         {"groups_spanning_classes", d.groups_spanning_classes}}},
       {"episode", {{"ways", p.ways}, {"shots", p.shots}, {"queries", p.queries}}},
       {"tokenizer",
        {{"kind", p.tokenizer_kind},
         {"pieces", p.vocab_pieces},
         {"hash_buckets", p.hash_buckets},
         {"max_len", p.max_len}}},
       {"splits", splits},
       {"unassigned_classes", p.unassigned}};
}

void print_text_profile(const TextProfile& p, std::ostream& out, bool list_classes) {
  auto row = [&](const std::string& key, const std::string& value) {
    // A key as long as the column (a reject reason) still gets a space before its value.
    out << "  " << pad_to_width(key + " ", 24) << value << "\n";
  };
  auto n = [](std::int64_t v) { return with_thousands(v); };
  const auto& d = p.dataset;
  out << "Text dataset\n";
  row("files", join(p.load.files, ", "));
  row("rows read", n(p.load.rows_read));
  row("rows rejected",
      n(p.load.rows_rejected) + " (" + pct(p.load.rows_rejected, p.load.rows_read) + ")");
  for (const auto& [reason, count] : p.load.rejected_by_reason) row("  " + reason, n(count));
  for (const auto& b : p.load.bad_rows)
    out << "    " << b.file << ":" << b.line << ": " << b.reason << "\n";
  if (p.load.non_utf8_cells > 0) row("cells not UTF-8", n(p.load.non_utf8_cells));
  row("texts", n(d.rows));
  row("classes", n(static_cast<std::int64_t>(d.classes.size())));
  row("texts per class", percentiles_text(p.texts_per_class));
  row("distinct per class", percentiles_text(p.groups_per_class));
  // Rows in groups of more than one: each such group's first row plus the rows beyond it.
  row("duplicate groups", n(d.duplicate_groups) + " (largest " + n(d.largest_group) + " texts; " +
                              n(d.rows_in_duplicates + d.duplicate_groups) + " texts in them, " +
                              pct(d.rows_in_duplicates + d.duplicate_groups, d.rows) + ")");
  if (d.groups_spanning_classes > 0)
    row("groups with 2+ classes", n(d.groups_spanning_classes) + " (never counted towards K + Q)");
  if (!p.dropped.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, groups] : p.dropped)
      if (list_classes || names.size() < kShownClasses)
        names.push_back(name + " (" + n(groups) + ")");
    if (!list_classes && p.dropped.size() > kShownClasses)
      names.push_back("... (" + n(static_cast<std::int64_t>(p.dropped.size() - kShownClasses)) +
                      " more; --tasks lists all)");
    row("classes left out",
        n(static_cast<std::int64_t>(p.dropped.size())) + " of " +
            n(static_cast<std::int64_t>(d.classes.size())) + " (" + n(p.dropped_rows) +
            " texts) with fewer than " + std::to_string(p.min_class_groups) +
            " distinct texts (data.text.min_class_groups), before the split: " + join(names, ", "));
  }
  out << (p.backbone_tokenizer ? "Tokenizer (model.backbone.tokenizer)\n"
                               : "Tokenizer (trained on the training classes' texts)\n");
  row("vocabulary", n(p.vocab_pieces) + " pieces" +
                        (p.hash_buckets > 0 ? " + " + n(p.hash_buckets) + " hashed buckets" : "") +
                        " (" + p.tokenizer_kind + ")");
  row("max_len", n(p.max_len) + " tokens");
  out << "Splits (" << p.ways << "-way " << p.shots << "-shot episodes, " << p.queries
      << " query texts per class)\n";
  for (const auto& s : p.splits) {
    std::vector<std::string> shown = s.class_names;
    if (!list_classes && shown.size() > kShownClasses) {
      const std::size_t more = shown.size() - kShownClasses;
      shown.resize(kShownClasses);
      shown.push_back("... (" + n(static_cast<std::int64_t>(more)) + " more; --tasks lists all)");
    }
    out << "  " << s.part << "\n";
    row("  classes", n(s.summary.classes) + ": " + join(shown, ", "));
    row("  texts", n(s.summary.rows) + " (" + n(s.summary.groups) + " distinct)");
    row("  tokens per text", percentiles_text(s.tokens));
    row("  truncated",
        n(s.truncated) + " (" + pct(s.truncated, s.tokens.count) + ") at max_len " + n(p.max_len));
    row("  out of vocabulary", fixed(100.0 * s.oov_rate, 2) + "% of " + n(s.pieces) +
                                   (p.hash_buckets > 0 ? " pieces fell to the hashed fallback"
                                    : p.tokenizer_kind.rfind("wordpiece", 0) == 0
                                        ? " pieces were [UNK] (words the vocabulary cannot spell)"
                                        : " pieces were the unknown id"));
    if (!s.summary.short_classes.empty()) {
      std::vector<std::string> names;
      for (const auto& c : s.summary.short_classes)
        if (names.size() < kShownClasses) names.push_back(c.name + " (" + n(c.groups) + ")");
      row("  short classes", n(static_cast<std::int64_t>(s.summary.short_classes.size())) +
                                 " with fewer than K + Q distinct texts: " + join(names, ", "));
    }
    if (!s.summary.problem.empty()) row("  problem", s.summary.problem);
  }
  for (const std::string& why : p.split_problems) row("problem", why);
  if (!p.unassigned.empty())
    row("unassigned classes",
        n(static_cast<std::int64_t>(p.unassigned.size())) + " (in no split list: never used)");
}

}  // namespace ml::inspect
