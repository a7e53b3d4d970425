// Config parsing, validation and serialisation: see config.hpp for every parameter.
#include "config/config.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/time_parse.hpp"

namespace ml::config {

namespace fs = std::filesystem;

char CsvFormat::delimiter_char() const {
  if (delimiter == "auto") return 0;
  if (delimiter == "tab" || delimiter == "\\t") return '\t';
  if (delimiter == "space") return ' ';
  return delimiter[0];
}

namespace {

// ---- from JSON, one function per type, each beside its checks --------------------------------

void read_format(JsonObject o, CsvFormat& f) {
  o.read("delimiter", f.delimiter);
  o.read("header", f.header);
  o.finish();
  require(f.delimiter == "auto" || f.delimiter == "tab" || f.delimiter == "space" ||
              f.delimiter == "\\t" ||
              (f.delimiter.size() == 1 &&
               std::string(",\t; |").find(f.delimiter[0]) != std::string::npos),
          o.path_of("delimiter"), Json(f.delimiter),
          "must be \"auto\", \",\", \"\\t\" (or \"tab\"), \";\", \" \" (or \"space\") or \"|\"");
}

void read_features(JsonObject o, FeatureColumns& f) {
  o.read("numeric", f.numeric);
  o.read("categorical", f.categorical);
  o.read("text", f.text);
  o.finish();
}

void read_columns(JsonObject o, ColumnMap& c) {
  o.read("user", c.user);
  o.read("item", c.item);
  o.read("task", c.task);
  o.read("timestamp", c.timestamp);
  o.read("event", c.event);
  o.read("rating", c.rating);
  o.read("price", c.price);
  o.read("quantity", c.quantity);
  o.finish();
  require(!c.task.empty(), o.path_of("task"), Json(nullptr),
          "a task column is required (the column that groups rows into tasks, e.g. a category)");
}

void read_side_table(JsonObject o, SideTable& t) {
  o.read("files", t.files);
  read_format(o.object("format"), t.format);
  o.read("join", t.join);
  o.read("key", t.key);
  read_features(o.object("features"), t.features);
  o.finish();
  require(!t.files.empty(), o.path_of("files"), Json(t.files), "must name at least one file");
  require_one_of(o.path_of("join"), t.join, {"item", "user"});
  require(!t.key.empty(), o.path_of("key"), Json(nullptr),
          "the id column of this table is required");
  require(!t.features.empty(), o.path_of("features"), Json::object(),
          "a side table needs at least one numeric, categorical or text feature column");
}

void read_data(JsonObject o, DataConfig& d) {
  o.read("files", d.files);
  read_format(o.object("format"), d.format);
  read_columns(o.object("columns"), d.columns);
  read_features(o.object("features"), d.features);
  auto tables = o.objects("side_tables");
  d.side_tables.clear();
  for (auto& t : tables) read_side_table(t, d.side_tables.emplace_back());
  o.read("bad_rows", d.bad_rows);
  o.read("show_bad_rows", d.show_bad_rows);
  o.read("time_format", d.time_format);
  o.read("cache", d.cache);
  o.finish();
  require(!d.files.empty(), o.path_of("files"), Json(d.files),
          "must name at least one CSV file of the purchase log");
  require_one_of(o.path_of("bad_rows"), d.bad_rows, {"skip", "fail"});
  require(d.show_bad_rows >= 0, o.path_of("show_bad_rows"), Json(d.show_bad_rows), "must be >= 0");
  require_one_of(o.path_of("time_format"), d.time_format, {"auto", "unix", "iso8601"});
  require(!d.cache.empty(), o.path_of("cache"), Json(d.cache),
          "must be \"auto\", \"off\" or a folder");
}

const std::vector<std::string> kAggregates = {
    "user_frequency",  "user_spend",      "user_recency", "user_mean_price",
    "item_popularity", "item_mean_price", "item_buyers"};

void read_feature_config(JsonObject o, FeatureConfig& f) {
  o.read("standardize", f.standardize);
  o.read("categorical", f.categorical);
  o.read("hash_buckets", f.hash_buckets);
  o.read("min_count", f.min_count);
  o.read("onehot_max", f.onehot_max);
  o.read("text_buckets", f.text_buckets);
  o.read("aggregates", f.aggregates);
  o.read("affinities", f.affinities);
  o.read("aggregate_rows", f.aggregate_rows);
  o.finish();
  require_one_of(o.path_of("categorical"), f.categorical, {"vocab", "hash"});
  require(f.hash_buckets >= 2, o.path_of("hash_buckets"), Json(f.hash_buckets), "must be >= 2");
  require(f.min_count >= 1, o.path_of("min_count"), Json(f.min_count), "must be >= 1");
  require(f.onehot_max >= 0, o.path_of("onehot_max"), Json(f.onehot_max), "must be >= 0");
  require(f.text_buckets >= 1, o.path_of("text_buckets"), Json(f.text_buckets), "must be >= 1");
  for (std::size_t i = 0; i < f.aggregates.size(); ++i)
    require_one_of(o.path_of("aggregates") + "[" + std::to_string(i) + "]", f.aggregates[i],
                   kAggregates);
  require_one_of(o.path_of("aggregate_rows"), f.aggregate_rows, {"training", "before_cutoff"});
  for (std::size_t i = 0; i < f.affinities.size(); ++i)
    require(std::count(f.affinities.begin(), f.affinities.end(), f.affinities[i]) == 1,
            o.path_of("affinities") + "[" + std::to_string(i) + "]", Json(f.affinities[i]),
            "is listed twice");
}

void read_label(JsonObject o, LabelConfig& l) {
  o.read("kind", l.kind);
  o.read("positive_events", l.positive_events);
  o.read("negative_events", l.negative_events);
  o.read("negatives_per_positive", l.negatives_per_positive);
  o.read("negative_sampling", l.negative_sampling);
  o.read("negatives_exclude", l.negatives_exclude);
  o.read("target", l.target);
  o.read("threshold", l.threshold);
  o.read("class_column", l.class_column);
  o.read("ways", l.ways);
  o.finish();
  require_one_of(o.path_of("kind"), l.kind,
                 {"implicit", "event_binary", "threshold", "regression", "multiclass"});
  require(std::isfinite(l.threshold), o.path_of("threshold"), Json(l.threshold),
          "must be a finite number");
  require(l.negatives_per_positive > 0 && l.negatives_per_positive <= 100,
          o.path_of("negatives_per_positive"), Json(l.negatives_per_positive),
          "must be in (0, 100]");
  require_one_of(o.path_of("negative_sampling"), l.negative_sampling, {"uniform", "popularity"});
  require_one_of(o.path_of("negatives_exclude"), l.negatives_exclude, {"all_time", "after_cutoff"});
  require_one_of(o.path_of("target"), l.target, {"rating", "price", "quantity", "spend"});
  require(l.ways >= 2, o.path_of("ways"), Json(l.ways), "must be >= 2");
  if (l.kind == "event_binary") {
    require(!l.positive_events.empty(), o.path_of("positive_events"), Json(l.positive_events),
            "event_binary labels need at least one positive event value");
    require(!l.negative_events.empty(), o.path_of("negative_events"), Json(l.negative_events),
            "event_binary labels need at least one negative event value");
  }
  if (l.kind == "multiclass")
    require(!l.class_column.empty(), o.path_of("class_column"), Json(nullptr),
            "multiclass labels need the column that holds each row's class");
}

void read_task(JsonObject o, TaskConfig& t) {
  read_label(o.object("label"), t.label);
  o.read("support", t.support);
  o.read("query", t.query);
  o.read("min_examples", t.min_examples);
  o.read("max_examples", t.max_examples);
  o.read("stratify", t.stratify);
  o.finish();
  require(t.support >= 1, o.path_of("support"), Json(t.support), "must be >= 1");
  require(t.query >= 1, o.path_of("query"), Json(t.query), "must be >= 1");
  require(t.min_examples >= 0, o.path_of("min_examples"), Json(t.min_examples),
          "must be >= 0 (0 means support + query)");
  require(t.max_examples >= 0, o.path_of("max_examples"), Json(t.max_examples),
          "must be >= 0 (0 means no limit)");
  require(t.max_examples == 0 || t.max_examples >= std::max(t.min_examples, t.support + t.query),
          o.path_of("max_examples"), Json(t.max_examples),
          "must be 0 or at least task.min_examples and task.support + task.query");
  require_one_of(o.path_of("stratify"), t.stratify, {"balanced", "proportional", "none"});
}

void read_split(JsonObject o, SplitConfig& s) {
  o.read("new_tasks", s.new_tasks);
  o.read("new_fraction", s.new_fraction);
  o.read("validation_fraction", s.validation_fraction);
  o.read("time_cutoff", s.time_cutoff);
  o.finish();
  require(s.new_fraction >= 0 && s.new_fraction < 1, o.path_of("new_fraction"),
          Json(s.new_fraction), "must be in [0, 1)");
  require(s.validation_fraction >= 0 && s.validation_fraction < 1, o.path_of("validation_fraction"),
          Json(s.validation_fraction), "must be in [0, 1)");
  require(s.new_fraction + s.validation_fraction < 1, o.path_of("validation_fraction"),
          Json(s.validation_fraction),
          "new_fraction + validation_fraction must leave some tasks for training (< 1)");
  if (!s.time_cutoff.empty())
    require(parse_timestamp(s.time_cutoff, TimeFormat::kAuto).has_value(), o.path_of("time_cutoff"),
            Json(s.time_cutoff),
            "expected an ISO-8601 date/time (2017-07-01 or 2017-07-01T00:00:00) or unix seconds");
}

void read_model(JsonObject o, ModelConfig& m) {
  o.read("type", m.type);
  o.read("hidden", m.hidden);
  o.read("embedding_dim", m.embedding_dim);
  o.finish();
  require_one_of(o.path_of("type"), m.type, {"mlp", "embedding_mlp"});
  require(!m.hidden.empty(), o.path_of("hidden"), Json(m.hidden), "needs at least one layer width");
  for (std::size_t i = 0; i < m.hidden.size(); ++i)
    require(m.hidden[i] >= 1, o.path_of("hidden") + "[" + std::to_string(i) + "]",
            Json(m.hidden[i]), "must be >= 1");
  require(m.embedding_dim >= 1, o.path_of("embedding_dim"), Json(m.embedding_dim), "must be >= 1");
}

void read_meta(JsonObject o, MetaConfig& m) {
  o.read("algorithm", m.algorithm);
  o.read("iterations", m.iterations);
  o.read("meta_batch", m.meta_batch);
  o.read("inner_steps", m.inner_steps);
  o.read("inner_lr", m.inner_lr);
  o.read("adapt_steps", m.adapt_steps);
  o.read("inner_params", m.inner_params);
  o.read("outer_optimizer", m.outer_optimizer);
  o.read("outer_lr", m.outer_lr);
  o.read("grad_clip", m.grad_clip);
  o.finish();
  require_one_of(
      o.path_of("algorithm"), m.algorithm,
      {"maml", "fomaml", "reptile", "anil", "metasgd", "protonet", "pretrain", "scratch"});
  require(m.iterations >= 0, o.path_of("iterations"), Json(m.iterations), "must be >= 0");
  require(m.meta_batch >= 1, o.path_of("meta_batch"), Json(m.meta_batch), "must be >= 1");
  require(m.inner_steps >= 1, o.path_of("inner_steps"), Json(m.inner_steps), "must be >= 1");
  require(m.inner_lr > 0 && std::isfinite(m.inner_lr), o.path_of("inner_lr"), Json(m.inner_lr),
          "must be a positive number");
  require(m.adapt_steps >= 0, o.path_of("adapt_steps"), Json(m.adapt_steps), "must be >= 0");
  require_one_of(o.path_of("inner_params"), m.inner_params, {"dense", "all", "head"});
  require_one_of(o.path_of("outer_optimizer"), m.outer_optimizer, {"adam", "sgd"});
  require(m.outer_lr > 0 && std::isfinite(m.outer_lr), o.path_of("outer_lr"), Json(m.outer_lr),
          "must be a positive number");
  require(m.grad_clip >= 0, o.path_of("grad_clip"), Json(m.grad_clip), "must be >= 0 (0 = off)");
}

void read_train(JsonObject o, TrainConfig& t) {
  o.read("log_every", t.log_every);
  o.read("validate_every", t.validate_every);
  o.read("validation_episodes", t.validation_episodes);
  o.read("checkpoint_every", t.checkpoint_every);
  o.finish();
  require(t.log_every >= 1, o.path_of("log_every"), Json(t.log_every), "must be >= 1");
  require(t.validate_every >= 0, o.path_of("validate_every"), Json(t.validate_every),
          "must be >= 0 (0 = only at the end)");
  require(t.validation_episodes >= 1, o.path_of("validation_episodes"), Json(t.validation_episodes),
          "must be >= 1");
  require(t.checkpoint_every >= 1, o.path_of("checkpoint_every"), Json(t.checkpoint_every),
          "must be >= 1");
}

void read_run(JsonObject o, RunConfig& r) {
  o.read("dir", r.dir);
  o.read("device", r.device);
  o.read("threads", r.threads);
  o.finish();
  require(!r.dir.empty(), o.path_of("dir"), Json(r.dir), "must not be empty");
  bool device_ok = r.device == "cpu" || r.device == "cuda" || r.device == "auto" ||
                   (starts_with(r.device, "cuda:") && parse_int(r.device.substr(5)).has_value() &&
                    *parse_int(r.device.substr(5)) >= 0);
  require(device_ok, o.path_of("device"), Json(r.device),
          "must be \"cpu\", \"cuda\", \"cuda:N\" or \"auto\"");
  require(r.threads >= 0, o.path_of("threads"), Json(r.threads), "must be >= 0 (0 = all cores)");
}

// ---- to JSON ---------------------------------------------------------------------------------

Json format_json(const CsvFormat& f) {
  return {{"delimiter", f.delimiter}, {"header", f.header}};
}

Json columns_json(const FeatureColumns& f) {
  return {{"numeric", f.numeric}, {"categorical", f.categorical}, {"text", f.text}};
}

}  // namespace

void to_json(Json& j, const Config& c) {
  const auto& d = c.data;
  Json side = Json::array();
  for (const auto& t : d.side_tables)
    side.push_back({{"files", t.files},
                    {"format", format_json(t.format)},
                    {"join", t.join},
                    {"key", t.key},
                    {"features", columns_json(t.features)}});
  const auto& m = d.columns;
  j = Json{{"seed", c.seed},
           {"data",
            {{"files", d.files},
             {"format", format_json(d.format)},
             {"columns",
              {{"user", m.user},
               {"item", m.item},
               {"task", m.task},
               {"timestamp", m.timestamp},
               {"event", m.event},
               {"rating", m.rating},
               {"price", m.price},
               {"quantity", m.quantity}}},
             {"features", columns_json(d.features)},
             {"side_tables", side},
             {"bad_rows", d.bad_rows},
             {"show_bad_rows", d.show_bad_rows},
             {"time_format", d.time_format},
             {"cache", d.cache}}},
           {"features",
            {{"standardize", c.features.standardize},
             {"categorical", c.features.categorical},
             {"hash_buckets", c.features.hash_buckets},
             {"min_count", c.features.min_count},
             {"onehot_max", c.features.onehot_max},
             {"text_buckets", c.features.text_buckets},
             {"aggregates", c.features.aggregates},
             {"affinities", c.features.affinities},
             {"aggregate_rows", c.features.aggregate_rows}}},
           {"task",
            {{"label",
              {{"kind", c.task.label.kind},
               {"positive_events", c.task.label.positive_events},
               {"negative_events", c.task.label.negative_events},
               {"negatives_per_positive", c.task.label.negatives_per_positive},
               {"negative_sampling", c.task.label.negative_sampling},
               {"negatives_exclude", c.task.label.negatives_exclude},
               {"target", c.task.label.target},
               {"threshold", c.task.label.threshold},
               {"class_column", c.task.label.class_column},
               {"ways", c.task.label.ways}}},
             {"support", c.task.support},
             {"query", c.task.query},
             {"min_examples", c.task.min_examples},
             {"max_examples", c.task.max_examples},
             {"stratify", c.task.stratify}}},
           {"split",
            {{"new_tasks", c.split.new_tasks},
             {"new_fraction", c.split.new_fraction},
             {"validation_fraction", c.split.validation_fraction},
             {"time_cutoff", c.split.time_cutoff}}},
           {"model",
            {{"type", c.model.type},
             {"hidden", c.model.hidden},
             {"embedding_dim", c.model.embedding_dim}}},
           {"meta",
            {{"algorithm", c.meta.algorithm},
             {"iterations", c.meta.iterations},
             {"meta_batch", c.meta.meta_batch},
             {"inner_steps", c.meta.inner_steps},
             {"inner_lr", c.meta.inner_lr},
             {"adapt_steps", c.meta.adapt_steps},
             {"inner_params", c.meta.inner_params},
             {"outer_optimizer", c.meta.outer_optimizer},
             {"outer_lr", c.meta.outer_lr},
             {"grad_clip", c.meta.grad_clip}}},
           {"train",
            {{"log_every", c.train.log_every},
             {"validate_every", c.train.validate_every},
             {"validation_episodes", c.train.validation_episodes},
             {"checkpoint_every", c.train.checkpoint_every}}},
           {"run", {{"dir", c.run.dir}, {"device", c.run.device}, {"threads", c.run.threads}}}};
}

namespace {

// features.affinities against the columns they need and the negatives they are fair with.
void check_affinities(const Config& c) {
  const auto& list = c.features.affinities;
  if (list.empty()) return;
  const auto& cols = c.data.columns;
  auto need = [](bool ok, const std::string& path, const std::string& why) {
    if (!ok) throw ConfigError(path + ": required " + why);
  };
  need(!cols.user.empty(), "data.columns.user", "by features.affinities");
  need(!cols.item.empty(), "data.columns.item", "by features.affinities");
  need(!c.split.time_cutoff.empty(), "split.time_cutoff",
       "by features.affinities (affinities come from the purchases before it, labels after it)");
  std::vector<std::string> item_columns;
  for (const auto& t : c.data.side_tables)
    if (t.join == "item")
      for (const auto& r : t.features.categorical)
        item_columns.push_back(r.name.empty() ? "#" + std::to_string(r.position) : r.name);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = "features.affinities[" + std::to_string(i) + "]";
    if (list[i] == "relative_price") {
      need(!cols.price.empty(), "data.columns.price", "by " + path + " = \"relative_price\"");
      continue;
    }
    if (list[i] == "item") continue;
    if (std::find(item_columns.begin(), item_columns.end(), list[i]) == item_columns.end()) {
      std::string message = path + " = \"" + list[i] +
                            "\": must be \"item\", \"relative_price\" or a categorical column "
                            "of an item side table (" +
                            (item_columns.empty() ? std::string("none is declared")
                                                  : "declared: " + join(item_columns, ", ")) +
                            ")";
      std::string suggestion = closest_match(list[i], item_columns);
      if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
      throw ConfigError(message);
    }
  }
  if (c.task.label.kind == "implicit" && c.task.label.negatives_exclude != "after_cutoff")
    throw ConfigError(
        "features.affinities: with task.label.kind = \"implicit\" they need "
        "task.label.negatives_exclude = \"after_cutoff\": with \"all_time\" an item the user "
        "bought before the cutoff can never be a negative, so a repeat purchase's affinity would "
        "give its label away");
}

}  // namespace

void validate(const Config& c) {
  const auto& cols = c.data.columns;
  const auto& label = c.task.label;
  auto need = [](bool ok, const std::string& path, const std::string& why) {
    if (!ok) throw ConfigError(path + ": required " + why);
  };
  if (label.kind == "implicit") {
    need(!cols.user.empty(), "data.columns.user", "by task.label.kind = \"implicit\"");
    need(!cols.item.empty(), "data.columns.item", "by task.label.kind = \"implicit\"");
  }
  if (label.kind == "event_binary")
    need(!cols.event.empty(), "data.columns.event", "by task.label.kind = \"event_binary\"");
  if (label.kind == "regression" || label.kind == "threshold") {
    if (label.target == "rating")
      need(!cols.rating.empty(), "data.columns.rating", "by task.label.target = \"rating\"");
    if (label.target == "price" || label.target == "spend")
      need(!cols.price.empty(), "data.columns.price",
           "by task.label.target = \"" + label.target + "\"");
    if (label.target == "quantity")
      need(!cols.quantity.empty(), "data.columns.quantity", "by task.label.target = \"quantity\"");
  }
  if (label.kind == "implicit" && !c.data.features.empty())
    throw ConfigError(
        "data.features: row-level feature columns cannot be used with task.label.kind = "
        "\"implicit\" (sampled negatives have no row to read them from, so they would give the "
        "label away); declare item or user attributes in data.side_tables instead");
  if (c.meta.algorithm == "protonet" && label.kind == "regression")
    throw ConfigError(
        "meta.algorithm = \"protonet\": needs class labels, but task.label.kind = "
        "\"regression\" has none; use maml, fomaml, reptile, anil or metasgd");
  if (!c.split.time_cutoff.empty())
    need(!cols.timestamp.empty(), "data.columns.timestamp", "by split.time_cutoff");
  for (const auto& a : c.features.aggregates) {
    if (starts_with(a, "user_"))
      need(!cols.user.empty(), "data.columns.user", "by features.aggregates \"" + a + "\"");
    if (starts_with(a, "item_"))
      need(!cols.item.empty(), "data.columns.item", "by features.aggregates \"" + a + "\"");
    if (a == "user_recency")
      need(!cols.timestamp.empty(), "data.columns.timestamp",
           "by features.aggregates \"" + a + "\"");
  }
  if (label.negatives_exclude == "after_cutoff")
    need(!c.split.time_cutoff.empty(), "split.time_cutoff",
         "by task.label.negatives_exclude = \"after_cutoff\" (the label window starts there)");
  check_affinities(c);
  if (c.features.aggregate_rows == "before_cutoff")
    need(!c.split.time_cutoff.empty(), "split.time_cutoff",
         "by features.aggregate_rows = \"before_cutoff\"");
  for (std::size_t i = 0; i < c.data.side_tables.size(); ++i) {
    const auto& t = c.data.side_tables[i];
    need(!(t.join == "item" ? cols.item : cols.user).empty(), "data.columns." + t.join,
         "by data.side_tables[" + std::to_string(i) + "].join = \"" + t.join + "\"");
  }
  auto check_positions = [](const CsvFormat& f, const std::vector<const ColumnRef*>& refs,
                            const std::string& where) {
    if (f.header) return;
    for (const ColumnRef* r : refs)
      if (!r->name.empty())
        throw ConfigError(where +
                          ".format.header = false: columns of a headerless file must be "
                          "given by 1-based position, but " +
                          r->describe() + " is a name");
  };
  std::vector<const ColumnRef*> log_refs = {&cols.user,      &cols.item,     &cols.task,
                                            &cols.timestamp, &cols.event,    &cols.rating,
                                            &cols.price,     &cols.quantity, &label.class_column};
  for (const auto* list :
       {&c.data.features.numeric, &c.data.features.categorical, &c.data.features.text})
    for (const auto& r : *list) log_refs.push_back(&r);
  std::vector<const ColumnRef*> nonempty;
  for (const auto* r : log_refs)
    if (!r->empty()) nonempty.push_back(r);
  check_positions(c.data.format, nonempty, "data");
  for (std::size_t i = 0; i < c.data.side_tables.size(); ++i) {
    const auto& t = c.data.side_tables[i];
    std::vector<const ColumnRef*> refs = {&t.key};
    for (const auto* list : {&t.features.numeric, &t.features.categorical, &t.features.text})
      for (const auto& r : *list) refs.push_back(&r);
    check_positions(t.format, refs, "data.side_tables[" + std::to_string(i) + "]");
  }
}

Config config_from_json(const Json& j) {
  Config c;
  JsonObject top(j, "");
  top.read("seed", c.seed);
  read_data(top.object("data"), c.data);
  read_feature_config(top.object("features"), c.features);
  read_task(top.object("task"), c.task);
  read_split(top.object("split"), c.split);
  read_model(top.object("model"), c.model);
  read_meta(top.object("meta"), c.meta);
  read_train(top.object("train"), c.train);
  read_run(top.object("run"), c.run);
  top.finish();
  const bool aggregates_given =
      j.contains("features") && j["features"].is_object() && j["features"].contains("aggregates");
  if (!aggregates_given) {
    // The default list adapts to the log's columns; a list the user wrote is checked as is.
    const auto& cols = c.data.columns;
    auto& list = c.features.aggregates;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const std::string& a) {
                                return (starts_with(a, "user_") && cols.user.empty()) ||
                                       (starts_with(a, "item_") && cols.item.empty()) ||
                                       (a == "user_recency" && cols.timestamp.empty());
                              }),
               list.end());
  }
  validate(c);
  return c;
}

void apply_override(Json& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("--set '" + assignment + "': expected KEY.PATH=VALUE, e.g. task.support=5");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;  // plain words need no JSON quotes

  // Segments are object keys separated by '.', each optionally followed by [N] list indices
  // (data.side_tables[0].files).
  auto fail = [&](const std::string& why) {
    throw UsageError("--set '" + assignment + "': " + why);
  };
  Json* node = &root;
  std::size_t pos = 0;
  while (pos < key.size()) {
    std::size_t end = key.find_first_of(".[", pos);
    std::string part = key.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (part.empty()) fail("empty key segment in '" + key + "'");
    if (node->is_null()) *node = Json::object();
    if (!node->is_object()) fail("'" + key.substr(0, pos ? pos - 1 : 0) + "' is not an object");
    node = &(*node)[part];
    pos = end == std::string::npos ? key.size() : end;
    while (pos < key.size() && key[pos] == '[') {
      std::size_t close = key.find(']', pos);
      auto index = close == std::string::npos ? std::nullopt
                                              : parse_int(key.substr(pos + 1, close - pos - 1));
      if (!index || *index < 0) fail("expected [N] with N >= 0 in '" + key + "'");
      if (!node->is_array() || static_cast<std::size_t>(*index) >= node->size())
        fail("'" + key.substr(0, close + 1) + "' does not exist (the list has " +
             std::to_string(node->is_array() ? node->size() : 0) + " entries)");
      node = &(*node)[static_cast<std::size_t>(*index)];
      pos = close + 1;
    }
    if (pos < key.size()) {
      if (key[pos] != '.') fail("unexpected '" + std::string(1, key[pos]) + "' in '" + key + "'");
      ++pos;
      if (pos == key.size()) fail("empty key segment in '" + key + "'");
    }
  }
  *node = value;
}

namespace {

void resolve_paths(Json& list, const fs::path& base) {
  auto fix = [&](Json& v) {
    if (v.is_string()) {
      fs::path p = v.get<std::string>();
      if (p.is_relative()) v = (base / p).lexically_normal().string();
    }
  };
  if (list.is_array())
    for (auto& v : list) fix(v);
  else
    fix(list);
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file '" + path + "': no such readable file");
  std::stringstream text;
  text << in.rdbuf();
  Json j;
  try {
    j = Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    // nlohmann's message carries "line L, column C"; keep only that part after its prefix.
    std::string what = e.what();
    auto pos = what.find("parse error");
    throw ConfigError(path +
                      ": not valid JSON: " + (pos == std::string::npos ? what : what.substr(pos)));
  }
  fs::path base = fs::path(path).parent_path();
  if (j.is_object() && j.contains("data") && j["data"].is_object()) {
    Json& data = j["data"];
    if (data.contains("files")) resolve_paths(data["files"], base);
    if (data.contains("cache") && data["cache"] != "auto" && data["cache"] != "off")
      resolve_paths(data["cache"], base);
    if (data.contains("side_tables") && data["side_tables"].is_array())
      for (auto& t : data["side_tables"])
        if (t.is_object() && t.contains("files")) resolve_paths(t["files"], base);
  }
  for (const auto& o : overrides) apply_override(j, o);
  try {
    Config c = config_from_json(j);
    c.source_path = path;
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace ml::config
