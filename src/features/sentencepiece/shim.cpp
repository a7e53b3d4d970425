// The C interface over SentencePiece: see shim.h. Built as its own module
// (libmetalearn_sentencepiece.so), not part of the metalearn library.
#include "features/sentencepiece/shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

char* copy_out(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

int fail(char** error, const std::string& message) {
  if (error) *error = copy_out(message);
  return 1;
}

template <typename T>
T* copy_array(const std::vector<T>& v) {
  if (v.empty()) return nullptr;
  T* out = static_cast<T*>(std::malloc(v.size() * sizeof(T)));
  if (out) std::memcpy(out, v.data(), v.size() * sizeof(T));
  return out;
}

class TextIterator : public sentencepiece::SentenceIterator {
 public:
  explicit TextIterator(std::vector<std::string> texts) : texts_(std::move(texts)) {}
  bool done() const override { return i_ >= texts_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return texts_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::vector<std::string> texts_;
  std::size_t i_ = 0;
};

const sentencepiece::SentencePieceProcessor& processor_of(const void* p) {
  return *static_cast<const sentencepiece::SentencePieceProcessor*>(p);
}

}  // namespace

extern "C" {

int ml_spm_abi_version(void) {
  return ML_SPM_ABI_VERSION;
}

void ml_spm_free(void* buffer) {
  std::free(buffer);
}

int ml_spm_train(const char* const* texts, const size_t* text_sizes, size_t n,
                 const char* const* keys, const char* const* values, size_t nargs, char** model,
                 size_t* model_size, char** error) {
  try {
    std::vector<std::string> corpus;
    corpus.reserve(n);
    for (size_t i = 0; i < n; ++i) corpus.emplace_back(texts[i], text_sizes[i]);
    std::unordered_map<std::string, std::string> args;
    for (size_t i = 0; i < nargs; ++i) args[keys[i]] = values[i];
    // The trainer reads its seed from this global before it starts.
    if (auto seed = args.find("seed"); seed != args.end()) {
      sentencepiece::SetRandomGeneratorSeed(
          static_cast<unsigned int>(std::strtoul(seed->second.c_str(), nullptr, 10)));
      args.erase(seed);
    }
    TextIterator iterator(std::move(corpus));
    std::string out;
    const auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &out);
    if (!status.ok()) return fail(error, status.ToString());
    *model = static_cast<char*>(std::malloc(out.size() ? out.size() : 1));
    if (!*model) return fail(error, "out of memory");
    std::memcpy(*model, out.data(), out.size());
    *model_size = out.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

int ml_spm_load(const char* model, size_t model_size, void** processor, char** error) {
  try {
    auto p = new sentencepiece::SentencePieceProcessor();
    const auto status = p->LoadFromSerializedProto(std::string_view(model, model_size));
    if (!status.ok()) {
      delete p;
      return fail(error, status.ToString());
    }
    *processor = p;
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

void ml_spm_release(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

int ml_spm_piece_size(const void* processor) {
  return processor_of(processor).GetPieceSize();
}

int ml_spm_unk_id(const void* processor) {
  return processor_of(processor).unk_id();
}

int ml_spm_encode(const void* processor, const char* text, size_t text_size, int** ids,
                  uint32_t** begins, uint32_t** ends, size_t* count, char** error) {
  try {
    sentencepiece::ImmutableSentencePieceText spt;
    const auto status =
        processor_of(processor).Encode(std::string_view(text, text_size), spt.mutable_proto());
    if (!status.ok()) return fail(error, status.ToString());
    std::vector<int> i;
    std::vector<uint32_t> b, e;
    for (const auto& piece : spt.pieces()) {
      i.push_back(static_cast<int>(piece.id()));
      b.push_back(piece.begin());
      e.push_back(piece.end());
    }
    *ids = copy_array(i);
    *begins = copy_array(b);
    *ends = copy_array(e);
    *count = i.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

int ml_spm_decode(const void* processor, const int* ids, size_t count, char** text,
                  size_t* text_size, char** error) {
  try {
    std::string out;
    const auto status = processor_of(processor).Decode(std::vector<int>(ids, ids + count), &out);
    if (!status.ok()) return fail(error, status.ToString());
    *text = copy_out(out);
    *text_size = out.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(error, e.what());
  }
}

}  // extern "C"
