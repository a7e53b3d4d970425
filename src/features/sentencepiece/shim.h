/* The C interface of libmetalearn_sentencepiece, the one module that links SentencePiece.
 *
 * Why a separate module: Debian's libsentencepiece.so.0 (0.1.97) carries its own copy of
 * protobuf 3.14 and exports its symbols, while LibTorch loads libprotobuf 3.21. Linked into one
 * executable, one library's protobuf symbols replace the other's and the process crashes in a
 * static initialiser before main() (or aborts on protobuf's version check). features/tokenizer.cpp
 * therefore dlopen()s this module with RTLD_LOCAL | RTLD_DEEPBIND: its SentencePiece binds to
 * its own protobuf and none of those symbols reach the rest of the process.
 *
 * Every function returns 0 on success; on failure it returns non-zero and sets *error to a
 * message that the caller frees with ml_spm_free. Buffers handed out are freed the same way.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a signature below changes; the loader refuses another version. */
#define ML_SPM_ABI_VERSION 1
int ml_spm_abi_version(void);

void ml_spm_free(void* buffer);

/* Trains on n texts with SentencePiece's named options (keys[i] = values[i], nargs of them);
 * the serialised model goes to *model (malloc'ed, *model_size bytes). */
int ml_spm_train(const char* const* texts, const size_t* text_sizes, size_t n,
                 const char* const* keys, const char* const* values, size_t nargs, char** model,
                 size_t* model_size, char** error);

/* Loads a serialised model; *processor is released with ml_spm_release. */
int ml_spm_load(const char* model, size_t model_size, void** processor, char** error);
void ml_spm_release(void* processor);
int ml_spm_piece_size(const void* processor);
int ml_spm_unk_id(const void* processor);

/* The pieces of a text: ids, and the byte span [begin, end) of each in the text (malloc'ed
 * arrays of *count entries; NULL when the text has no piece). */
int ml_spm_encode(const void* processor, const char* text, size_t text_size, int** ids,
                  uint32_t** begins, uint32_t** ends, size_t* count, char** error);

/* The text of piece ids (malloc'ed, *text_size bytes). */
int ml_spm_decode(const void* processor, const int* ids, size_t count, char** text,
                  size_t* text_size, char** error);

#ifdef __cplusplus
}
#endif
