// The config's field tables (config as data): every struct member is in its section's table,
// every field survives to_json -> config_from_json -> to_json with a non-default value, the enum
// names are consistent, and the checked-in docs/CONFIG.md is what the tables generate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "config/config.hpp"
#include "config/config_docs.hpp"
#include "config/field_table.hpp"
#include "features/feature_space.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

#ifndef ML_SOURCE_DIR
#error "ML_SOURCE_DIR must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::config::Json;
using ml::config::TableInfo;

// ---- how many members an aggregate struct has, counted by brace-initialisation ---------------

// Converts to any member type, so that T{AnyMember, ...} compiles for up to as many
// initialisers as T has members (aggregates may be brace-initialised with fewer, never more).
struct AnyMember {
  template <typename T>
  operator T() const;  // declared only: used in unevaluated contexts
};

template <typename T, typename... A>
constexpr auto brace_initialisable(int) -> decltype(T{std::declval<A>()...}, true) {
  return true;
}
template <typename T, typename... A>
constexpr bool brace_initialisable(...) {
  return false;
}
template <typename T, std::size_t... I>
constexpr bool brace_initialisable_with(std::index_sequence<I...>) {
  return brace_initialisable<T, decltype((void)I, AnyMember{})...>(0);
}
template <typename T, std::size_t N = 1>
constexpr std::size_t member_count() {
  if constexpr (N > 64 || !brace_initialisable_with<T>(std::make_index_sequence<N>{}))
    return N - 1;
  else
    return member_count<T, N + 1>();
}

// Every table reachable from the top level, by struct name.
void collect_tables(const TableInfo& table, std::map<std::string, const TableInfo*>& out) {
  out[table.name] = &table;
  for (const auto& f : table.fields)
    if (f.section) collect_tables(*f.section, out);
}

const TableInfo& table_named(const std::string& name) {
  static const auto tables = [] {
    std::map<std::string, const TableInfo*> all;
    collect_tables(ml::config::config_table_info(), all);
    return all;
  }();
  auto it = tables.find(name);
  if (it == tables.end()) throw std::runtime_error("no field table for struct " + name);
  return *it->second;
}

// `unserialised`: members deliberately left out of the JSON (Config::source_path).
template <typename S>
void expect_table_covers(const std::string& name, std::size_t unserialised = 0) {
  EXPECT_EQ(table_named(name).fields.size() + unserialised, member_count<S>())
      << name << " has " << member_count<S>() << " members but its field table in "
      << "src/config/config.cpp lists " << table_named(name).fields.size()
      << ": add the new member to the table (key, member, check, docstring) so that it is "
         "read, written by to_json and documented";
}

TEST(ConfigTables, EveryStructMemberIsInItsTable) {
  using namespace ml::config;
  static_assert(member_count<ColumnRef>() == 2, "the member counter works");
  expect_table_covers<CsvFormat>("CsvFormat");
  expect_table_covers<FeatureColumns>("FeatureColumns");
  expect_table_covers<ColumnMap>("ColumnMap");
  expect_table_covers<SideTable>("SideTable");
  expect_table_covers<EmbeddingTableConfig>("EmbeddingTableConfig");
  expect_table_covers<DataConfig>("DataConfig");
  expect_table_covers<TextColumns>("TextColumns");
  expect_table_covers<TokenizerConfig>("TokenizerConfig");
  expect_table_covers<TransformerConfig>("TransformerConfig");
  expect_table_covers<ItemTextConfig>("ItemTextConfig");
  expect_table_covers<UserSequenceConfig>("UserSequenceConfig");
  expect_table_covers<BackboneConfig>("BackboneConfig");
  expect_table_covers<AdapterConfig>("AdapterConfig");
  expect_table_covers<FeatureConfig>("FeatureConfig");
  expect_table_covers<LabelConfig>("LabelConfig");
  expect_table_covers<TaskConfig>("TaskConfig");
  expect_table_covers<SplitConfig>("SplitConfig");
  expect_table_covers<ModelConfig>("ModelConfig");
  expect_table_covers<MetaConfig>("MetaConfig");
  expect_table_covers<TrainConfig>("TrainConfig");
  expect_table_covers<RunConfig>("RunConfig");
  expect_table_covers<Config>("Config", /*unserialised=*/1);
}

TEST(ConfigTables, KeysAreUniqueAndDocumented) {
  std::map<std::string, const TableInfo*> all;
  collect_tables(ml::config::config_table_info(), all);
  EXPECT_EQ(all.size(), 22u);
  for (const auto& [name, table] : all) {
    EXPECT_FALSE(table->doc.empty()) << name;
    std::set<std::string> keys;
    for (const auto& f : table->fields) {
      EXPECT_TRUE(keys.insert(f.key).second) << name << "." << f.key << " is listed twice";
      EXPECT_FALSE(f.doc.empty()) << name << "." << f.key << " has no docstring";
      EXPECT_FALSE(f.type.empty()) << name << "." << f.key << " has no type";
    }
  }
}

// ---- every field round-trips with a value other than the base config's -----------------------

// A valid config whose columns are positions (so that a header can be switched off) and that
// has a side table, a time cutoff and threshold labels (so that every choice can change alone).
Json base_config() {
  return Json::parse(R"({
    "data": {"files": ["log.csv"],
             "columns": {"user": 1, "item": 2, "task": 3, "timestamp": 4, "event": 5,
                         "rating": 6, "price": 7, "quantity": 8},
             "side_tables": [{"files": ["items.csv"], "key": 1,
                              "features": {"categorical": [2]}}]},
    "features": {"embeddings": [{"file": "vectors.csv", "key": 1, "dim": 4}]},
    "task": {"label": {"kind": "threshold"}},
    "split": {"time_cutoff": "2017-07-01"}
  })");
}

// The values a generic change cannot make valid, with a valid different one.
const std::map<std::string, Json>& special_values() {
  static const std::map<std::string, Json> values = {
      {"/split/time_cutoff", "2018-01-01"},  // must stay a date
      {"/task/max_examples", 1000},          // 0 or >= support + query
      {"/features/affinities", {"item"}},    // "item", "relative_price" or a column
      {"/run/device", "cuda:3"},             // with an index
      {"/task/support", "all"},              // a number or "all"
      {"/model/transformer/dim", 128},       // a multiple of heads
      {"/model/transformer/heads", 8},       // a divisor of dim
      {"/model/item_text/columns", {"#3"}},  // an item side table's text column
      {"/model/item_text/dim", 64},          // a multiple of heads
      {"/model/item_text/heads", 4},         // a divisor of dim
      {"/model/user_sequence/heads", 4},     // a divisor of model.embedding_dim
  };
  return values;
}

// The base the item-text and user-sequence fields change in: an embedding_mlp whose item side
// table has a text column.
Json context_config() {
  Json j = base_config();
  j["model"]["type"] = "embedding_mlp";
  j["data"]["side_tables"][0]["features"]["text"] = {3};
  return j;
}

bool context_only(const std::string& pointer) {
  return pointer.rfind("/model/item_text/", 0) == 0 ||
         pointer.rfind("/model/user_sequence/", 0) == 0;
}

// A valid text run (data.text): the base its own fields (and the class lists) change in.
Json text_config(bool path) {
  Json j = Json::parse(R"({
    "data": {"files": ["intents.csv"], "text": {"column": "text"}},
    "task": {"label": {"kind": "multiclass"}},
    "model": {"type": "transformer"}
  })");
  j["data"]["text"][path ? "path_column" : "class_column"] = path ? "path" : "category";
  return j;
}

// The base model.backbone and model.adapter change in: a text run of model.type "backbone".
Json backbone_config() {
  Json j = text_config(false);
  j["model"] = {
      {"type", "backbone"},
      {"backbone", {{"file", "encoder.pt"}, {"tokenizer", "encoder.tokenizer"}, {"dim", 8}}}};
  return j;
}

bool backbone_only(const std::string& pointer) {
  return pointer.rfind("/model/backbone/", 0) == 0 || pointer.rfind("/model/adapter/", 0) == 0;
}

// Fields that exist for text runs only (refused elsewhere).
bool text_only(const std::string& pointer) {
  for (const char* prefix : {"/data/text/", "/split/train_classes", "/split/validation_classes",
                             "/split/new_classes", "/meta/inner_layers"})
    if (pointer.rfind(prefix, 0) == 0) return true;
  return false;
}

Json changed(const ml::config::FieldInfo& f, const Json& v) {
  if (f.type == "boolean") return !v.get<bool>();
  if (f.type == "integer") return v.get<std::int64_t>() + 1;
  // A nearby value: some ranges are narrow (features.tokenizer.character_coverage: [0.98, 1]).
  if (f.type == "number") return v.get<double>() == 0 ? 0.5 : v.get<double>() * 0.99;
  if (f.type == "string" && !f.choices.empty()) {
    auto at = std::find(f.choices.begin(), f.choices.end(), v.get<std::string>());
    return at == f.choices.end() || at + 1 == f.choices.end() ? f.choices.front() : *(at + 1);
  }
  if (f.type == "string") return v.get<std::string>() + "_2";
  if (f.type == "list of strings" && !f.choices.empty()) {
    Json list = v;
    if (list.empty())
      list.push_back(f.choices.front());
    else
      list.erase(list.size() - 1);
    return list;
  }
  if (f.type == "list of strings" || f.type == "list of columns") {
    Json list = v;
    list.push_back(f.type == "list of columns" ? Json(12) : Json("extra"));
    return list;
  }
  if (f.type == "list of integers") {
    Json list = v;
    list.push_back(7);
    return list;
  }
  if (f.type == "column") return v.is_number() ? Json(v.get<int>() + 10) : Json(11);
  throw std::runtime_error("no change for type " + f.type);
}

// Every leaf field below `table`, as JSON pointers into a config (list sections at index 0).
void leaf_fields(const TableInfo& table, const std::string& pointer,
                 std::vector<std::pair<std::string, const ml::config::FieldInfo*>>& out) {
  for (const auto& f : table.fields) {
    const std::string here = pointer + "/" + f.key;
    if (f.section)
      leaf_fields(*f.section, f.shape == ml::config::FieldShape::kSectionList ? here + "/0" : here,
                  out);
    else
      out.emplace_back(here, &f);
  }
}

Json round_trip(const Json& j) {
  Json out;
  to_json(out, ml::config::config_from_json(j));
  return out;
}

TEST(ConfigTables, EveryFieldRoundTripsWithAChangedValue) {
  const Json tabular = round_trip(base_config());
  ASSERT_EQ(round_trip(tabular), tabular);
  const Json text_class = round_trip(text_config(false)), text_path = round_trip(text_config(true));
  const Json context = round_trip(context_config());
  const Json backbone = round_trip(backbone_config());
  std::vector<std::pair<std::string, const ml::config::FieldInfo*>> leaves;
  leaf_fields(ml::config::config_table_info(), "", leaves);
  EXPECT_GE(leaves.size(), 75u);  // as many as the tables list today
  for (const auto& [pointer, field] : leaves) {
    const Json::json_pointer at(pointer);
    // A text run names its class by class_column or path_column, not both.
    const Json& base = backbone_only(pointer)                 ? backbone
                       : context_only(pointer)                ? context
                       : !text_only(pointer)                  ? tabular
                       : pointer == "/data/text/class_column" ? text_class
                                                              : text_path;
    ASSERT_TRUE(base.contains(at)) << pointer << " is missing from to_json";
    auto special = special_values().find(pointer);
    const Json value =
        special != special_values().end() ? special->second : changed(*field, base.at(at));
    ASSERT_NE(value, base.at(at)) << pointer;
    Json edited = base;
    edited[at] = value;
    Json out;
    try {
      out = round_trip(edited);
    } catch (const std::exception& e) {
      ADD_FAILURE() << pointer << " = " << value.dump() << " was rejected: " << e.what();
      continue;
    }
    EXPECT_EQ(out.at(at), value) << pointer << " does not survive to_json -> from_json";
    EXPECT_EQ(out, edited) << pointer << ": the round trip changed other fields";
  }
}

// "/data/side_tables/0/key" as messages write it: "data.side_tables[0].key".
std::string dotted(const std::string& pointer) {
  std::string path;
  std::istringstream parts(pointer.substr(1));
  for (std::string part; std::getline(parts, part, '/');)
    if (!part.empty() && std::all_of(part.begin(), part.end(), ::isdigit))
      path += "[" + part + "]";
    else
      path += (path.empty() ? "" : ".") + part;
  return path;
}

// The range checks belong to the field kinds, so every field, a new one included, has them:
// numbers must fit the model's 32-bit floats, integers their C++ type (never wrapped).
TEST(ConfigTables, EveryNumericFieldRefusesWhatItsTypeCannotHold) {
  const Json base = round_trip(base_config());
  std::vector<std::pair<std::string, const ml::config::FieldInfo*>> leaves;
  leaf_fields(ml::config::config_table_info(), "", leaves);
  int numbers = 0, integers = 0;
  for (const auto& [pointer, field] : leaves) {
    const Json::json_pointer at(pointer);
    const std::string path = dotted(pointer);
    // The message of the ConfigError for `value` at this field, "" when it is accepted.
    auto message_for = [&](const Json& value, Json* accepted = nullptr) -> std::string {
      Json edited = base;
      edited[at] = value;
      try {
        const Json out = round_trip(edited);
        if (accepted) *accepted = out.at(at);
      } catch (const ml::ConfigError& e) {
        return e.what();
      }
      return "";
    };
    if (field->type == "number") {
      ++numbers;
      for (double v : {1e300, -1e300, 1e-300}) {
        const std::string m = message_for(v);
        EXPECT_EQ(m.rfind(path + " = " + Json(v).dump() + ": must fit a 32-bit float", 0), 0u)
            << path << ": " << m;
      }
    } else if (field->type.rfind("integer", 0) == 0 ||
               field->type.find("of integers") != std::string::npos ||
               field->type.find("column") != std::string::npos) {
      ++integers;
      const bool list = field->type.rfind("list", 0) == 0;
      const std::string item = list ? path + "[0]" : path;
      auto value = [&](const Json& v) { return list ? Json::array({v}) : v; };
      // 2^64, written as a float: a whole number that no integer type holds (a column position
      // is never written as a float).
      const Json too_big = 1.8446744073709552e19;
      const std::string m = message_for(value(too_big));
      const bool column = field->type.find("column") != std::string::npos;
      EXPECT_EQ(m.rfind(item + " = " + too_big.dump() +
                            (column ? ": expected a column name or a 1-based column position"
                                    : ": expected an integer that fits in"),
                        0),
                0u)
          << path << ": " << m;
      // 2^32 + 1 is either held exactly (64-bit fields), refused by the field's upper bound, or
      // refused as not fitting, never wrapped to 1.
      const Json wide = 4294967297ULL;
      Json accepted;
      const std::string w = message_for(value(wide), &accepted);
      if (w.empty()) {
        EXPECT_EQ(accepted, value(wide)) << path;
      } else if (w.find(": must be from ") == std::string::npos) {
        EXPECT_EQ(w.rfind(item + " = 4294967297: expected an integer that fits in 32 bits", 0), 0u)
            << path << ": " << w;
      }
    }
  }
  EXPECT_GE(numbers, 7);  // as many as the tables list today
  EXPECT_GE(integers, 20);
}

// ---- enums -----------------------------------------------------------------------------------

template <typename E>
void expect_names_consistent(const std::string& what) {
  const auto values = ml::enum_values<E>();
  ASSERT_FALSE(values.empty()) << what;
  std::set<std::string> names;
  for (std::size_t i = 0; i < values.size(); ++i) {
    // Enumerators are listed in declaration order without gaps, so a new one in the middle
    // that the table lacks shows up here (one at the end shows up in the switches: -Wswitch).
    EXPECT_EQ(static_cast<std::size_t>(values[i]), i) << what;
    const std::string name = ml::enum_name(values[i]);
    EXPECT_TRUE(names.insert(name).second) << what << ": '" << name << "' names two values";
    EXPECT_EQ(ml::enum_from_name<E>(name), values[i]) << what << " " << name;
  }
  EXPECT_EQ(ml::enum_names<E>().size(), values.size()) << what;
  EXPECT_EQ(ml::enum_from_name<E>("no such name"), std::nullopt) << what;
}

TEST(ConfigEnums, NamesAreListedOnceAndReadBack) {
  using namespace ml::config;
  expect_names_consistent<Delimiter>("Delimiter");
  expect_names_consistent<BadRows>("BadRows");
  expect_names_consistent<CategoricalEncoding>("CategoricalEncoding");
  expect_names_consistent<Aggregate>("Aggregate");
  expect_names_consistent<AggregateRows>("AggregateRows");
  expect_names_consistent<JoinKey>("JoinKey");
  expect_names_consistent<DuplicateKeys>("DuplicateKeys");
  expect_names_consistent<ColumnSource>("ColumnSource");
  expect_names_consistent<LabelKind>("LabelKind");
  expect_names_consistent<LabelTarget>("LabelTarget");
  expect_names_consistent<NegativeSampling>("NegativeSampling");
  expect_names_consistent<NegativesExclude>("NegativesExclude");
  expect_names_consistent<Stratify>("Stratify");
  expect_names_consistent<ModelType>("ModelType");
  expect_names_consistent<Activation>("Activation");
  expect_names_consistent<SubwordModel>("SubwordModel");
  expect_names_consistent<PathMode>("PathMode");
  expect_names_consistent<Algorithm>("Algorithm");
  expect_names_consistent<InnerParams>("InnerParams");
  expect_names_consistent<OuterOptimizer>("OuterOptimizer");
  expect_names_consistent<SelectionMetric>("SelectionMetric");
  expect_names_consistent<DeviceKind>("DeviceKind");
  expect_names_consistent<ml::TimeFormat>("TimeFormat");
  expect_names_consistent<ml::TimeReading>("TimeReading");
  expect_names_consistent<ml::features::Source>("features::Source");
  expect_names_consistent<ml::tasks::DropCause>("tasks::DropCause");
}

TEST(ConfigEnums, DelimiterAliasesReadAsTheCharacterAndWriteCanonically) {
  using ml::config::Delimiter;
  EXPECT_EQ(ml::enum_from_name<Delimiter>("tab"), Delimiter::kTab);
  EXPECT_EQ(ml::enum_from_name<Delimiter>("\\t"), Delimiter::kTab);
  EXPECT_EQ(ml::enum_from_name<Delimiter>("\t"), Delimiter::kTab);
  EXPECT_EQ(ml::enum_from_name<Delimiter>("space"), Delimiter::kSpace);
  EXPECT_EQ(ml::enum_name(Delimiter::kTab), "\t");
  EXPECT_EQ(ml::config::delimiter_char(Delimiter::kPipe), '|');
  EXPECT_EQ(ml::enum_names<Delimiter>(),
            (std::vector<std::string>{"auto", ",", "\t", ";", " ", "|"}));

  Json j = base_config();
  j["data"]["format"]["delimiter"] = "tab";
  const Json out = round_trip(j);
  EXPECT_EQ(out["data"]["format"]["delimiter"], "\t");
  EXPECT_EQ(round_trip(out), out);
}

TEST(ConfigEnums, DeviceSpecsParseAndPrint) {
  using ml::config::parse_device_spec;
  for (const char* text : {"auto", "cpu", "cuda", "cuda:0", "cuda:12"})
    EXPECT_EQ(parse_device_spec(text)->name(), text);
  EXPECT_EQ(parse_device_spec("cuda:3")->index, 3);
  EXPECT_EQ(parse_device_spec("cuda")->index, -1);
  for (const char* text : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", ""})
    EXPECT_EQ(parse_device_spec(text), std::nullopt) << text;
}

// ---- the generated reference -----------------------------------------------------------------

TEST(ConfigDocs, CheckedInReferenceIsCurrent) {
  const std::string path = std::string(ML_SOURCE_DIR) + "/docs/CONFIG.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path << " is missing; generate it with: build/metalearn config-docs > "
                  << "docs/CONFIG.md";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(text.str() == ml::config::config_reference_markdown())
      << "docs/CONFIG.md is stale (the config's field tables changed); regenerate it with: "
         "build/metalearn config-docs > docs/CONFIG.md";
}

TEST(ConfigDocs, ReferenceListsEveryKeyWithItsDefault) {
  const std::string doc = ml::config::config_reference_markdown();
  std::vector<std::pair<std::string, const ml::config::FieldInfo*>> leaves;
  leaf_fields(ml::config::config_table_info(), "", leaves);
  for (const auto& [pointer, field] : leaves) {
    std::string path = pointer.substr(1);
    for (char& c : path)
      if (c == '/') c = '.';
    const auto list_index = path.find(".0.");
    if (list_index != std::string::npos) path.replace(list_index, 3, "[].");
    EXPECT_NE(doc.find("| `" + path + "` | " + field->type + " | "), std::string::npos) << path;
  }
  EXPECT_NE(doc.find("| `task.support` | integer or \"all\" | `10` | 1 to 1000000 or \"all\" |"),
            std::string::npos);
  EXPECT_NE(doc.find("`\"maml\"`, `\"fomaml\"`"), std::string::npos);
}

TEST(ConfigDocs, CommandPrintsTheReference) {
  const auto r = ml::testing::run_cli("config-docs");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out == ml::config::config_reference_markdown());
}

}  // namespace
