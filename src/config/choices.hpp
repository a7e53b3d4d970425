// Every closed set of choices in the config, as enums whose JSON spellings are listed once, in
// their EnumNames specialisation. The spellings are those of the config files, run directories
// and checkpoints already written, so they must not change. What each choice means is
// documented with its field in config.cpp (and so in docs/CONFIG.md).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/enum_names.hpp"

namespace ml::config {

// data.format.delimiter, data.side_tables[].format.delimiter
enum class Delimiter { kAuto, kComma, kTab, kSemicolon, kSpace, kPipe };
// data.bad_rows
enum class BadRows { kSkip, kFail };
// features.categorical
enum class CategoricalEncoding { kVocab, kHash };
// features.aggregates entries
enum class Aggregate {
  kUserFrequency,
  kUserSpend,
  kUserRecency,
  kUserMeanPrice,
  kItemPopularity,
  kItemMeanPrice,
  kItemBuyers
};
// features.aggregate_rows
enum class AggregateRows { kTraining, kBeforeCutoff };
// data.side_tables[].join
enum class JoinKey { kItem, kUser };
// data.side_tables[].duplicates
enum class DuplicateKeys { kError, kFirst };
// features.embeddings[].format, .missing, .normalize (features/embedding_table.hpp)
enum class EmbeddingFormat { kAuto, kCsv, kBinary };
enum class MissingEmbedding { kZero, kLearned };
enum class EmbeddingNormalize { kNone, kL2 };
// data.columns.task_from, task.label.class_from: the log itself, or a side table joined on
// item or user id.
enum class ColumnSource { kLog, kItem, kUser };
// task.label.kind
enum class LabelKind { kImplicit, kEventBinary, kThreshold, kRegression, kMulticlass };
// task.label.target
enum class LabelTarget { kRating, kPrice, kQuantity, kSpend };
// task.label.negative_sampling
enum class NegativeSampling { kUniform, kPopularity };
// task.label.negatives_exclude
enum class NegativesExclude { kAllTime, kAfterCutoff };
// task.stratify
enum class Stratify { kBalanced, kProportional, kNone };
// model.type
enum class ModelType { kMlp, kEmbeddingMlp, kTransformer, kBackbone };
// model.backbone.inputs: what a TorchScript backbone's forward takes.
enum class BackboneInputs { kIdsMask, kIds };
// model.backbone.mask: the dtype its attention mask arrives in (1/true on real tokens).
enum class MaskType { kBool, kInt64, kFloat32 };
// model.backbone.output: what its forward returns and how a row's vector is read from it.
enum class BackboneOutput { kPooled, kMean, kFirst };
// model.backbone.lowercase: whether a WordPiece vocabulary's texts are lower-cased (and their
// accents stripped) before lookup, as BERT's uncased models expect.
enum class LowerCase { kAuto, kYes, kNo };
// model.adapter.kind: the parameter-efficient adapters on a backbone's head.
enum class AdapterKind { kNone, kFilm, kLora };
// The transformer's feed-forward activation (models/transformer.hpp).
enum class Activation { kGelu, kRelu };
// The tokenizer's SentencePiece model (features/tokenizer.hpp).
enum class SubwordModel { kUnigram, kBpe };
// Which class a category path gives at data.text.path_level (data/category_path.hpp): the
// level's own name, or the path up to it.
enum class PathMode { kLevel, kPrefix };
// meta.algorithm
enum class Algorithm { kMaml, kFomaml, kReptile, kAnil, kMetaSgd, kProtonet, kPretrain, kScratch };
// meta.inner_params
enum class InnerParams { kDense, kAll, kHead, kAdapters };
// meta.outer_optimizer
enum class OuterOptimizer { kAdam, kSgd };
// train.selection_metric
enum class SelectionMetric { kAuto, kLoss, kAuc, kAccuracy, kRmse, kMae };
// The kind part of run.device and of --device.
enum class DeviceKind { kAuto, kCpu, kCuda };

// The character a delimiter choice stands for; 0 for kAuto (detected from the file).
char delimiter_char(Delimiter d);

// Aggregates over users need data.columns.user, over items data.columns.item.
bool is_user_aggregate(Aggregate a);

// pretrain and scratch: the baselines every meta-learner is measured against.
bool is_baseline(Algorithm a);
// The baselines' names, "pretrain" then "scratch": the methods eval adds to every comparison.
std::vector<std::string> baseline_names();
// Whether an evaluated method's name ("maml", "maml#2", "pretrain", ...) is a baseline's.
bool is_baseline_name(std::string_view method);

// A device request: "auto", "cpu", "cuda" (the current CUDA device) or "cuda:N".
struct DeviceSpec {
  DeviceKind kind = DeviceKind::kAuto;
  int index = -1;  // cuda:N; -1 when no index was given

  std::string name() const;  // the spelling parse_device_spec() reads back
  bool operator==(const DeviceSpec& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const DeviceSpec& o) const { return !(*this == o); }
};

// nullopt for anything but "auto", "cpu", "cuda" and "cuda:N" with N >= 0.
std::optional<DeviceSpec> parse_device_spec(std::string_view text);

}  // namespace ml::config

namespace ml {

template <>
struct EnumNames<config::Delimiter> {
  using E = config::Delimiter;
  static constexpr EnumName<E> entries[] = {
      {E::kAuto, "auto"},   {E::kComma, ","}, {E::kTab, "\t"},
      {E::kSemicolon, ";"}, {E::kSpace, " "}, {E::kPipe, "|"},
      {E::kTab, "tab"},     {E::kTab, "\\t"}, {E::kSpace, "space"}};
  static constexpr const char* expected =
      "must be \"auto\", \",\", \"\\t\" (or \"tab\"), \";\", \" \" (or \"space\") or \"|\"";
};

template <>
struct EnumNames<config::BadRows> {
  using E = config::BadRows;
  static constexpr EnumName<E> entries[] = {{E::kSkip, "skip"}, {E::kFail, "fail"}};
};

template <>
struct EnumNames<config::CategoricalEncoding> {
  using E = config::CategoricalEncoding;
  static constexpr EnumName<E> entries[] = {{E::kVocab, "vocab"}, {E::kHash, "hash"}};
};

template <>
struct EnumNames<config::Aggregate> {
  using E = config::Aggregate;
  static constexpr EnumName<E> entries[] = {
      {E::kUserFrequency, "user_frequency"},   {E::kUserSpend, "user_spend"},
      {E::kUserRecency, "user_recency"},       {E::kUserMeanPrice, "user_mean_price"},
      {E::kItemPopularity, "item_popularity"}, {E::kItemMeanPrice, "item_mean_price"},
      {E::kItemBuyers, "item_buyers"}};
};

template <>
struct EnumNames<config::AggregateRows> {
  using E = config::AggregateRows;
  static constexpr EnumName<E> entries[] = {{E::kTraining, "training"},
                                            {E::kBeforeCutoff, "before_cutoff"}};
};

template <>
struct EnumNames<config::JoinKey> {
  using E = config::JoinKey;
  static constexpr EnumName<E> entries[] = {{E::kItem, "item"}, {E::kUser, "user"}};
};

template <>
struct EnumNames<config::DuplicateKeys> {
  using E = config::DuplicateKeys;
  static constexpr EnumName<E> entries[] = {{E::kError, "error"}, {E::kFirst, "first"}};
};

template <>
struct EnumNames<config::EmbeddingFormat> {
  using E = config::EmbeddingFormat;
  static constexpr EnumName<E> entries[] = {
      {E::kAuto, "auto"}, {E::kCsv, "csv"}, {E::kBinary, "binary"}};
};

template <>
struct EnumNames<config::MissingEmbedding> {
  using E = config::MissingEmbedding;
  static constexpr EnumName<E> entries[] = {{E::kZero, "zero"}, {E::kLearned, "learned"}};
};

template <>
struct EnumNames<config::EmbeddingNormalize> {
  using E = config::EmbeddingNormalize;
  static constexpr EnumName<E> entries[] = {{E::kNone, "none"}, {E::kL2, "l2"}};
};

template <>
struct EnumNames<config::ColumnSource> {
  using E = config::ColumnSource;
  static constexpr EnumName<E> entries[] = {
      {E::kLog, "log"}, {E::kItem, "item"}, {E::kUser, "user"}};
};

template <>
struct EnumNames<config::LabelKind> {
  using E = config::LabelKind;
  static constexpr EnumName<E> entries[] = {{E::kImplicit, "implicit"},
                                            {E::kEventBinary, "event_binary"},
                                            {E::kThreshold, "threshold"},
                                            {E::kRegression, "regression"},
                                            {E::kMulticlass, "multiclass"}};
};

template <>
struct EnumNames<config::LabelTarget> {
  using E = config::LabelTarget;
  static constexpr EnumName<E> entries[] = {{E::kRating, "rating"},
                                            {E::kPrice, "price"},
                                            {E::kQuantity, "quantity"},
                                            {E::kSpend, "spend"}};
};

template <>
struct EnumNames<config::NegativeSampling> {
  using E = config::NegativeSampling;
  static constexpr EnumName<E> entries[] = {{E::kUniform, "uniform"},
                                            {E::kPopularity, "popularity"}};
};

template <>
struct EnumNames<config::NegativesExclude> {
  using E = config::NegativesExclude;
  static constexpr EnumName<E> entries[] = {{E::kAllTime, "all_time"},
                                            {E::kAfterCutoff, "after_cutoff"}};
};

template <>
struct EnumNames<config::Stratify> {
  using E = config::Stratify;
  static constexpr EnumName<E> entries[] = {
      {E::kBalanced, "balanced"}, {E::kProportional, "proportional"}, {E::kNone, "none"}};
};

template <>
struct EnumNames<config::ModelType> {
  using E = config::ModelType;
  static constexpr EnumName<E> entries[] = {{E::kMlp, "mlp"},
                                            {E::kEmbeddingMlp, "embedding_mlp"},
                                            {E::kTransformer, "transformer"},
                                            {E::kBackbone, "backbone"}};
};

template <>
struct EnumNames<config::BackboneInputs> {
  using E = config::BackboneInputs;
  static constexpr EnumName<E> entries[] = {{E::kIdsMask, "ids_mask"}, {E::kIds, "ids"}};
};

template <>
struct EnumNames<config::MaskType> {
  using E = config::MaskType;
  static constexpr EnumName<E> entries[] = {
      {E::kBool, "bool"}, {E::kInt64, "int64"}, {E::kFloat32, "float32"}};
};

template <>
struct EnumNames<config::LowerCase> {
  using E = config::LowerCase;
  static constexpr EnumName<E> entries[] = {{E::kAuto, "auto"}, {E::kYes, "yes"}, {E::kNo, "no"}};
};

template <>
struct EnumNames<config::BackboneOutput> {
  using E = config::BackboneOutput;
  static constexpr EnumName<E> entries[] = {
      {E::kPooled, "pooled"}, {E::kMean, "mean"}, {E::kFirst, "first"}};
};

template <>
struct EnumNames<config::AdapterKind> {
  using E = config::AdapterKind;
  static constexpr EnumName<E> entries[] = {
      {E::kNone, "none"}, {E::kFilm, "film"}, {E::kLora, "lora"}};
};

template <>
struct EnumNames<config::Activation> {
  using E = config::Activation;
  static constexpr EnumName<E> entries[] = {{E::kGelu, "gelu"}, {E::kRelu, "relu"}};
};

template <>
struct EnumNames<config::SubwordModel> {
  using E = config::SubwordModel;
  static constexpr EnumName<E> entries[] = {{E::kUnigram, "unigram"}, {E::kBpe, "bpe"}};
};

template <>
struct EnumNames<config::PathMode> {
  using E = config::PathMode;
  static constexpr EnumName<E> entries[] = {{E::kLevel, "level"}, {E::kPrefix, "prefix"}};
};

template <>
struct EnumNames<config::Algorithm> {
  using E = config::Algorithm;
  static constexpr EnumName<E> entries[] = {{E::kMaml, "maml"},         {E::kFomaml, "fomaml"},
                                            {E::kReptile, "reptile"},   {E::kAnil, "anil"},
                                            {E::kMetaSgd, "metasgd"},   {E::kProtonet, "protonet"},
                                            {E::kPretrain, "pretrain"}, {E::kScratch, "scratch"}};
};

template <>
struct EnumNames<config::InnerParams> {
  using E = config::InnerParams;
  static constexpr EnumName<E> entries[] = {
      {E::kDense, "dense"}, {E::kAll, "all"}, {E::kHead, "head"}, {E::kAdapters, "adapters"}};
};

template <>
struct EnumNames<config::OuterOptimizer> {
  using E = config::OuterOptimizer;
  static constexpr EnumName<E> entries[] = {{E::kAdam, "adam"}, {E::kSgd, "sgd"}};
};

template <>
struct EnumNames<config::SelectionMetric> {
  using E = config::SelectionMetric;
  static constexpr EnumName<E> entries[] = {{E::kAuto, "auto"}, {E::kLoss, "loss"},
                                            {E::kAuc, "auc"},   {E::kAccuracy, "accuracy"},
                                            {E::kRmse, "rmse"}, {E::kMae, "mae"}};
};

template <>
struct EnumNames<config::DeviceKind> {
  using E = config::DeviceKind;
  static constexpr EnumName<E> entries[] = {
      {E::kAuto, "auto"}, {E::kCpu, "cpu"}, {E::kCuda, "cuda"}};
};

}  // namespace ml
