// The subword tokenizer with its hashed fallback: see tokenizer.hpp.
#include "features/tokenizer.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "features/sentencepiece/shim.h"
#include "features/wordpiece.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/utf8.hpp"

namespace ml::features {

TokenizerOptions tokenizer_options(const config::TokenizerConfig& t, std::uint64_t seed) {
  TokenizerOptions o;
  o.model = t.model;
  o.vocab_size = t.vocab_size;
  o.character_coverage = t.character_coverage;
  o.hash_buckets = t.hash_buckets;
  o.ngram = t.ngram;
  o.max_ngrams_per_unknown = t.max_ngrams_per_unknown;
  o.max_training_texts = t.max_training_texts;
  o.seed = seed;
  return o;
}

namespace {

constexpr std::string_view kMagic = "metalearn-tokenizer 1";

// SentencePiece reads one sentence per call; a tab or line break inside a text (a quoted CSV
// field) is a space to us, so the n-gram and word fallback see the same spacing as the pieces.
std::string flatten_whitespace(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

// The SentencePiece module (sentencepiece/shim.h says why it is loaded apart), opened once.
struct SentencePieceModule {
  decltype(&ml_spm_free) free = nullptr;
  decltype(&ml_spm_train) train = nullptr;
  decltype(&ml_spm_load) load = nullptr;
  decltype(&ml_spm_release) release = nullptr;
  decltype(&ml_spm_piece_size) piece_size = nullptr;
  decltype(&ml_spm_unk_id) unk_id = nullptr;
  decltype(&ml_spm_encode) encode = nullptr;
  decltype(&ml_spm_decode) decode = nullptr;
};

const SentencePieceModule& sentencepiece_module() {
  static const SentencePieceModule module = [] {
    // The build tree's module first (tests and build/metalearn), then the one installed with
    // the running executable (ML_SPM_MODULE_FROM_BINDIR is relative to its folder).
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::string installed = (exe.parent_path() / ML_SPM_MODULE_FROM_BINDIR).string();
    std::string tried;
    void* handle = nullptr;
    for (const std::string& path : {std::string(ML_SPM_MODULE_BUILD_PATH), installed}) {
      if (!std::filesystem::exists(path, ec)) continue;
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle) break;
      tried += std::string("; ") + dlerror();
    }
    if (!handle)
      throw Error(ExitCode::kRuntime, "cannot load the SentencePiece module (looked for " +
                                          installed + " and " + ML_SPM_MODULE_BUILD_PATH + tried +
                                          "): reinstall metalearn");
    auto symbol = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
      if (!fn)
        throw Error(ExitCode::kRuntime, std::string("the SentencePiece module lacks ") + name +
                                            ": reinstall metalearn");
    };
    decltype(&ml_spm_abi_version) version = nullptr;
    symbol(version, "ml_spm_abi_version");
    if (version() != ML_SPM_ABI_VERSION)
      throw Error(ExitCode::kRuntime,
                  "the SentencePiece module is of another metalearn version: reinstall metalearn");
    SentencePieceModule m;
    symbol(m.free, "ml_spm_free");
    symbol(m.train, "ml_spm_train");
    symbol(m.load, "ml_spm_load");
    symbol(m.release, "ml_spm_release");
    symbol(m.piece_size, "ml_spm_piece_size");
    symbol(m.unk_id, "ml_spm_unk_id");
    symbol(m.encode, "ml_spm_encode");
    symbol(m.decode, "ml_spm_decode");
    return m;
  }();
  return module;
}

// A message the module allocated, as a string (and freed).
std::string take_error(char* error) {
  std::string message = error ? error : "unknown error";
  sentencepiece_module().free(error);
  return message;
}

// A loaded SentencePiece processor, released with the last tokenizer that shares it.
std::shared_ptr<const void> load_processor(const std::string& model, std::string* error) {
  const auto& m = sentencepiece_module();
  void* processor = nullptr;
  char* message = nullptr;
  if (m.load(model.data(), model.size(), &processor, &message) != 0) {
    *error = take_error(message);
    return nullptr;
  }
  return std::shared_ptr<const void>(
      processor, [](const void* p) { sentencepiece_module().release(const_cast<void*>(p)); });
}

void check_options(const TokenizerOptions& o) {
  if (o.vocab_size < 8)
    throw ConfigError("the tokenizer's vocabulary size is " + std::to_string(o.vocab_size) +
                      "; at least 8 pieces are needed");
  // SentencePiece's own bound (its trainer refuses a lower coverage).
  if (!(o.character_coverage >= 0.98 && o.character_coverage <= 1))
    throw ConfigError("the tokenizer's character coverage must be in [0.98, 1]");
  if (o.hash_buckets < 1) throw ConfigError("the tokenizer needs at least 1 hash bucket");
  if (o.ngram < 1) throw ConfigError("the tokenizer's fallback n-grams need n >= 1");
  if (o.max_ngrams_per_unknown < 0)
    throw ConfigError("the tokenizer's n-grams per unknown piece cannot be negative");
  if (o.max_training_texts < 0)
    throw ConfigError("the tokenizer's number of training texts cannot be negative");
}

// The texts SentencePiece trains on: non-blank ones, all or a seeded subset, in input order.
std::vector<std::string> training_texts(const std::vector<std::string>& texts,
                                        const TokenizerOptions& o) {
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < texts.size(); ++i)
    if (texts[i].find_first_not_of(" \t\r\n") != std::string::npos) keep.push_back(i);
  if (o.max_training_texts > 0 && keep.size() > static_cast<std::size_t>(o.max_training_texts)) {
    Rng rng(derive_seed(o.seed, hash_bytes("tokenizer-subset", 16)));
    shuffle(keep, rng);
    keep.resize(static_cast<std::size_t>(o.max_training_texts));
    std::sort(keep.begin(), keep.end());
  }
  std::vector<std::string> out;
  out.reserve(keep.size());
  for (std::size_t i : keep) out.push_back(flatten_whitespace(texts[i]));
  return out;
}

// Byte offsets where each code point (or invalid byte) of `s` starts, plus s.size().
std::vector<std::size_t> code_point_starts(std::string_view s) {
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < s.size();) {
    starts.push_back(i);
    next_code_point(s, i);
  }
  starts.push_back(s.size());
  return starts;
}

}  // namespace

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, const TokenizerOptions& options) {
  check_options(options);
  const std::vector<std::string> corpus = training_texts(texts, options);
  if (corpus.empty())
    throw DataError("the tokenizer has no text to train on (" + std::to_string(texts.size()) +
                    " texts, all blank)");
  // Single-threaded, every sentence, no shuffling: SentencePiece's EM sums over threads and its
  // sampling draws from a global generator, either of which would make the bytes vary.
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", options.model == SubwordModel::kBpe ? "bpe" : "unigram"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"hard_vocab_limit", "false"},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"num_threads", "1"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"minloglevel", "2"},  // SentencePiece logs every EM step to stderr otherwise
  };
  std::vector<const char*> keys, values, texts_in;
  std::vector<std::size_t> sizes;
  const std::string seed = std::to_string(static_cast<unsigned int>(options.seed));
  keys.push_back("seed");
  values.push_back(seed.c_str());
  for (const auto& [key, value] : args) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  for (const auto& text : corpus) {
    texts_in.push_back(text.data());
    sizes.push_back(text.size());
  }
  const auto& module = sentencepiece_module();
  char* model_bytes = nullptr;
  std::size_t model_size = 0;
  char* error = nullptr;
  if (module.train(texts_in.data(), sizes.data(), texts_in.size(), keys.data(), values.data(),
                   keys.size(), &model_bytes, &model_size, &error) != 0) {
    const std::string why = take_error(error);
    // SentencePiece's message for the one case a config meets in practice names its own flags.
    const std::string too_small = "Vocabulary size is smaller than required_chars. ";
    const auto at = why.find(too_small);
    if (at != std::string::npos) {
      const auto from = at + too_small.size();  // "8 vs 79."
      throw DataError("features.tokenizer.vocab_size = " + std::to_string(options.vocab_size) +
                      " is below the number of distinct characters the " +
                      std::to_string(corpus.size()) + " training texts need (" +
                      why.substr(from, why.find('.', from) - from) +
                      "): raise features.tokenizer.vocab_size");
    }
    throw DataError("SentencePiece could not train the tokenizer (features.tokenizer) on " +
                    std::to_string(corpus.size()) + " texts: " + why);
  }
  std::string model(model_bytes, model_size);
  module.free(model_bytes);
  Tokenizer t;
  std::string load_error;
  t.processor_ = load_processor(model, &load_error);
  if (!t.processor_)
    throw std::logic_error("SentencePiece rejected the model it had just trained: " + load_error);
  t.model_ = std::move(model);
  t.pieces_ = module.piece_size(t.processor_.get());
  t.hash_buckets_ = options.hash_buckets;
  t.ngram_ = options.ngram;
  t.max_ngrams_per_unknown_ = options.max_ngrams_per_unknown;
  return t;
}

std::string Tokenizer::to_bytes() const {
  if (wordpiece_) {
    const nlohmann::json header = {{"kind", "wordpiece"}, {"lowercase", wordpiece_->lowercase()}};
    return std::string(kMagic) + "\n" + header.dump() + "\n" + wordpiece_->vocab_text();
  }
  const nlohmann::json header = {{"hash_buckets", hash_buckets_},
                                 {"ngram", ngram_},
                                 {"max_ngrams_per_unknown", max_ngrams_per_unknown_}};
  return std::string(kMagic) + "\n" + header.dump() + "\n" + model_;
}

Tokenizer Tokenizer::from_bytes(std::string_view bytes) {
  const std::size_t first = bytes.find('\n');
  if (first == std::string_view::npos || bytes.substr(0, first) != kMagic)
    throw CheckpointError("the checkpoint's tokenizer is not a metalearn tokenizer (format 1)");
  const std::size_t second = bytes.find('\n', first + 1);
  if (second == std::string_view::npos)
    throw CheckpointError("the checkpoint's tokenizer is truncated");
  Tokenizer t;
  try {
    const auto header = nlohmann::json::parse(bytes.substr(first + 1, second - first - 1));
    if (header.value("kind", "sentencepiece") == "wordpiece") {
      const bool lower = header.at("lowercase").get<bool>();
      t.wordpiece_ = std::make_shared<const WordPiece>(WordPiece::from_vocab(
          bytes.substr(second + 1), lower ? config::LowerCase::kYes : config::LowerCase::kNo));
      t.pieces_ = t.wordpiece_->size();
      return t;
    }
    t.hash_buckets_ = header.at("hash_buckets").get<std::int64_t>();
    t.ngram_ = header.at("ngram").get<int>();
    t.max_ngrams_per_unknown_ = header.at("max_ngrams_per_unknown").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("the checkpoint's tokenizer header is damaged: ") + e.what());
  } catch (const DataError& e) {
    throw CheckpointError(std::string("the checkpoint's WordPiece vocabulary is damaged: ") +
                          e.what());
  }
  if (t.hash_buckets_ < 0 || t.ngram_ < 1 || t.max_ngrams_per_unknown_ < 0)
    throw CheckpointError("the checkpoint's tokenizer header holds invalid options");
  t.model_ = std::string(bytes.substr(second + 1));
  std::string load_error;
  t.processor_ = load_processor(t.model_, &load_error);
  if (!t.processor_)
    throw CheckpointError("the checkpoint's SentencePiece model is damaged: " + load_error);
  t.pieces_ = sentencepiece_module().piece_size(t.processor_.get());
  return t;
}

Tokenizer Tokenizer::from_file(const std::string& path, config::LowerCase lowercase) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) throw DataError("is a folder, not a file");
  // A pipe would block the command until something writes to it.
  if (std::filesystem::exists(path, error) && !std::filesystem::is_regular_file(path, error))
    throw DataError("is not a regular file (a pipe or a device); it names a tokenizer file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(std::string("cannot be opened: ") + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw DataError("is empty; it names a tokenizer file");
  const std::string first_line = bytes.substr(0, std::min(bytes.find('\n'), bytes.size()));
  if (first_line.rfind("metalearn-tokenizer ", 0) == 0 && first_line != kMagic)
    throw DataError("a metalearn tokenizer of another format ('" + first_line.substr(0, 40) +
                    "'); this build reads '" + std::string(kMagic) + "'");
  if (first_line == kMagic) {
    try {
      return from_bytes(bytes);
    } catch (const CheckpointError& e) {
      // from_bytes speaks of a checkpoint's tokenizer; this one is a file of its own.
      std::string why = e.what();
      const std::string checkpoint = "the checkpoint's ";
      if (why.rfind(checkpoint, 0) == 0) why = "its " + why.substr(checkpoint.size());
      throw DataError(why);
    }
  }
  Tokenizer t;
  if (WordPiece::looks_like_vocab(bytes)) {
    t.wordpiece_ = std::make_shared<const WordPiece>(WordPiece::from_vocab(bytes, lowercase));
    t.pieces_ = t.wordpiece_->size();
    if (!t.wordpiece_->classify_id() || !t.wordpiece_->separator_id())
      spdlog::warn(
          "the WordPiece vocabulary has no {}: texts reach the backbone without it (BERT's "
          "models expect [CLS] first and [SEP] last; model.backbone.output = \"first\" reads "
          "the first token's state)",
          !t.wordpiece_->classify_id() && !t.wordpiece_->separator_id() ? "[CLS] and no [SEP]"
          : !t.wordpiece_->classify_id()                                ? "[CLS]"
                                                                        : "[SEP]");
    return t;
  }
  std::string load_error;
  t.processor_ = load_processor(bytes, &load_error);
  // Text that SentencePiece cannot read either: most likely a vocabulary without its [UNK].
  if (!t.processor_ && bytes.find('\0') == std::string::npos && is_valid_utf8(bytes))
    WordPiece::from_vocab(bytes, lowercase);  // throws, naming what it lacks
  if (!t.processor_)
    throw DataError(
        "neither a metalearn tokenizer, a SentencePiece model nor a WordPiece vocabulary (one "
        "token per line with an [UNK] line, as BERT's vocab.txt); SentencePiece says: " +
        load_error);
  t.model_ = bytes;
  t.pieces_ = sentencepiece_module().piece_size(t.processor_.get());
  t.hash_buckets_ = 0;
  return t;
}

std::string Tokenizer::kind() const {
  if (!wordpiece_) return "sentencepiece";
  return wordpiece_->lowercase() ? "wordpiece, lower-cased" : "wordpiece";
}

std::vector<std::int64_t> Tokenizer::encode(std::string_view text, EncodeStats* stats) const {
  if (wordpiece_) return wordpiece_->encode(text, stats);
  const std::string flat = flatten_whitespace(text);
  const auto& module = sentencepiece_module();
  int* piece_ids = nullptr;
  std::uint32_t *begins = nullptr, *ends = nullptr;
  std::size_t count = 0;
  char* error = nullptr;
  if (module.encode(processor_.get(), flat.data(), flat.size(), &piece_ids, &begins, &ends, &count,
                    &error) != 0)
    throw DataError("SentencePiece could not encode a text: " + take_error(error));
  const std::vector<int> id_of(piece_ids, piece_ids + count);
  const std::vector<std::uint32_t> begin_of(begins, begins + count), end_of(ends, ends + count);
  module.free(piece_ids);
  module.free(begins);
  module.free(ends);
  const int unknown = module.unk_id(processor_.get());
  std::vector<std::int64_t> ids;
  const auto bucket = [&](char tag, std::string_view s) {
    std::string key(1, tag);
    key += '\x1f';
    key.append(s);
    return pieces_ + static_cast<std::int64_t>(hash_bytes(key.data(), key.size()) %
                                               static_cast<std::uint64_t>(hash_buckets_));
  };
  EncodeStats local;
  for (std::size_t k = 0; k < count; ++k) {
    ++local.pieces;
    if (id_of[k] != unknown) {
      ids.push_back(id_of[k]);
      continue;
    }
    ++local.unknown_pieces;
    if (hash_buckets_ == 0) {  // a SentencePiece model as given: its own unknown id
      ids.push_back(unknown);
      continue;
    }
    const std::size_t before = ids.size();
    // The unknown span without the word-boundary space a piece may carry, and the
    // whitespace-delimited word around it, in the text SentencePiece read.
    std::size_t begin = std::min<std::size_t>(begin_of[k], flat.size());
    const std::size_t end = std::min<std::size_t>(end_of[k], flat.size());
    while (begin < end && flat[begin] == ' ') ++begin;
    std::size_t word_begin = begin, word_end = end;
    while (word_begin > 0 && flat[word_begin - 1] != ' ') --word_begin;
    while (word_end < flat.size() && flat[word_end] != ' ') ++word_end;
    ids.push_back(bucket('w', std::string_view(flat).substr(word_begin, word_end - word_begin)));
    const std::string_view surface = std::string_view(flat).substr(begin, end - begin);
    const std::vector<std::size_t> starts = code_point_starts(surface);
    const std::size_t units = starts.size() - 1, n = static_cast<std::size_t>(ngram_);
    const std::size_t grams = units <= n ? (units > 0 ? 1 : 0) : units - n + 1;
    for (std::size_t g = 0; g < grams && g < static_cast<std::size_t>(max_ngrams_per_unknown_);
         ++g) {
      const std::size_t last = std::min(g + n, units);
      ids.push_back(bucket('c', surface.substr(starts[g], starts[last] - starts[g])));
    }
    local.fallback_ids += static_cast<std::int64_t>(ids.size() - before);
  }
  if (stats) {
    stats->pieces += local.pieces;
    stats->unknown_pieces += local.unknown_pieces;
    stats->fallback_ids += local.fallback_ids;
  }
  return ids;
}

EncodedTexts Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                     std::int64_t max_len) const {
  if (max_len < 1) throw ConfigError("the maximum token length must be at least 1");
  EncodedTexts out;
  out.rows = static_cast<std::int64_t>(texts.size());
  out.max_len = max_len;
  out.ids.assign(texts.size() * static_cast<std::size_t>(max_len), pad_id());
  out.mask.assign(out.ids.size(), 0);
  out.lengths.reserve(texts.size());
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const std::vector<std::int64_t> ids = encode(texts[r], &out.stats);
    out.lengths.push_back(static_cast<std::int64_t>(ids.size()));
    if (ids.size() > static_cast<std::size_t>(max_len)) ++out.truncated;
    const std::size_t kept = std::min(ids.size(), static_cast<std::size_t>(max_len));
    const std::size_t row = r * static_cast<std::size_t>(max_len);
    std::copy_n(ids.begin(), kept, out.ids.begin() + static_cast<std::ptrdiff_t>(row));
    if (wordpiece_ && wordpiece_->separator_id() && kept < ids.size())
      out.ids[row + kept - 1] = *wordpiece_->separator_id();
    std::fill_n(out.mask.begin() + static_cast<std::ptrdiff_t>(row), kept, 1);
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids) const {
  if (wordpiece_) return wordpiece_->decode(ids);
  const auto& module = sentencepiece_module();
  std::vector<int> pieces;
  for (std::int64_t id : ids) {
    if (id == pad_id()) continue;
    pieces.push_back(id > 0 && id < pieces_ ? static_cast<int>(id)
                                            : module.unk_id(processor_.get()));
  }
  char* text = nullptr;
  std::size_t size = 0;
  char* error = nullptr;
  if (module.decode(processor_.get(), pieces.data(), pieces.size(), &text, &size, &error) != 0)
    throw DataError("SentencePiece could not decode ids: " + take_error(error));
  std::string out(text, size);
  module.free(text);
  return out;
}

}  // namespace ml::features
