// Precomputed embedding tables (features.embeddings): vectors a team computed offline with a
// large model (a two-tower recommender's item or user vectors, item2vec, a sentence encoder over
// titles), keyed by item or user id, read from CSV or from the binary format below. A binary
// table is memory-mapped read-only and never copied into the process: opening it reads each page
// once through the mapping (the checksum and the finite check), and the kernel may evict those
// pages again, so a table larger than RAM costs address space, not memory (its keys and their
// index are held: some 100 bytes per row). A CSV table is parsed into memory.
//
// Binary format (file extension .mlemb), every integer little-endian:
//
//   offset  size      field
//   0       8         magic, the bytes "MLEMBTBL"
//   8       4         u32 version: 1 (a newer version is refused, naming both)
//   12      4         u32 key type: 1 = byte strings (the only one)
//   16      8         u64 rows N
//   24      8         u64 dim D
//   32      8         u64 offset of the vectors: 64
//   40      8         u64 offset of the keys: 64 + 4 N D
//   48      8         u64 size of the key block in bytes
//   56      8         u64 reserved, 0
//   64      4 N D     N rows of D IEEE-754 float32, row-major (row r's D values together)
//   keys    ...       N keys in row order, each a u32 byte length and that many bytes
//
// The file ends right after the key block. A key is an id as the purchase log writes it (raw
// bytes, usually UTF-8); loading applies the log reader's cell escape (util/utf8.hpp) so that
// keys compare with the log's ids exactly. Errors (DataError, one line naming the file): a file
// shorter than its header says (truncated), another magic, a newer version, a dim other than the
// declared one, a key twice, a value that is not a finite float32.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace ml::features {

inline constexpr char kEmbeddingMagic[8] = {'M', 'L', 'E', 'M', 'B', 'T', 'B', 'L'};
inline constexpr std::uint32_t kEmbeddingVersion = 1;
inline constexpr std::uint32_t kEmbeddingStringKeys = 1;
inline constexpr std::uint64_t kEmbeddingHeaderSize = 64;
inline constexpr const char* kEmbeddingExtension = ".mlemb";

// The format `table` is read in: its format, or for "auto" binary when the file ends in .mlemb.
config::EmbeddingFormat embedding_format(const config::EmbeddingTableConfig& table);

class EmbeddingTable {
 public:
  // Reads (CSV) or maps (binary) table.file and checks it against table.dim. Tables are kept
  // for the process and shared: the same file opened again (unchanged: same inode, size and
  // modification time) is not read again, which makes "once per command" hold however many
  // encoders a command binds. Throws DataError naming the file (see the top of this file).
  static std::shared_ptr<const EmbeddingTable> open(const config::EmbeddingTableConfig& table);

  ~EmbeddingTable();
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  const std::string& path() const { return path_; }
  std::int64_t rows() const { return rows_; }
  int dim() const { return dim_; }
  // XXH3-64 (util/checksum.hpp) of the file's bytes: what a run records to refuse a changed
  // table.
  std::uint64_t checksum() const { return checksum_; }
  // The row of `key` (an id as the log's dictionaries hold it), or -1.
  std::int64_t find(std::string_view key) const;
  // Row r's dim() values.
  const float* row(std::int64_t r) const { return values_ + r * dim_; }
  // Row r's key as the log holds it (escaped as a CSV cell).
  const std::string& key(std::int64_t r) const { return keys_[static_cast<std::size_t>(r)]; }

 private:
  EmbeddingTable() = default;
  void read_csv(const config::EmbeddingTableConfig& table);
  void map_binary(const config::EmbeddingTableConfig& table);
  void index_keys(const std::vector<std::size_t>& lines);

  std::string path_;
  std::int64_t rows_ = 0;
  int dim_ = 0;
  std::uint64_t checksum_ = 0;
  const float* values_ = nullptr;  // into storage_ (CSV) or the mapping (binary)
  std::vector<float> storage_;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string_view, std::int64_t> index_;  // views into keys_
};

// Writes `rows` vectors of `dim` floats (`values`, row-major) with their `keys` (raw bytes, as
// the log writes the ids) in the binary format, atomically. Throws DataError for a key longer
// than 4 GiB or a non-finite value, FileWriteError when the file cannot be written.
void write_embedding_binary(const std::string& path, const std::vector<std::string>& keys,
                            const float* values, int dim);

// `metalearn embeddings convert`: reads `input` (any format) and writes its rows to `output` in
// the binary format, keys unescaped back to the log's bytes. Returns the rows written.
std::int64_t convert_embedding_table(const config::EmbeddingTableConfig& input,
                                     const std::string& output);

}  // namespace ml::features
