// Embedding tables: CSV parsing, the memory-mapped binary format and its writer; see
// embedding_table.hpp.
#include "features/embedding_table.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>

#include "data/csv_reader.hpp"
#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

// The format is little-endian and read by casting the mapping: a big-endian host would need
// byte swaps, which no target of this tool needs.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .mlemb format is little-endian");

namespace ml::features {

namespace {

std::string quoted_path(const std::string& path) {
  return "'" + printable(path) + "'";
}

// The parts of the header after the magic, as laid out in embedding_table.hpp.
struct Header {
  std::uint32_t version = 0, key_type = 0;
  std::uint64_t rows = 0, dim = 0, vectors_offset = 0, keys_offset = 0, keys_size = 0, reserved = 0;
};

template <typename T>
T read_le(const unsigned char* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

std::uint64_t file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot read embedding table " + quoted_path(path));
  Checksum64 sum;
  std::vector<char> buffer(std::size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    sum.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  return sum.value();
}

// What a value must be to join the model's float32 inputs.
bool finite_float(double v) {
  return std::isfinite(v) && std::fabs(v) <= std::numeric_limits<float>::max();
}

// The file's identity for the process-wide cache: a table is read again only when it changed.
struct FileStamp {
  std::uint64_t device = 0, inode = 0, size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
};

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw DataError("cannot open embedding table " + quoted_path(path) + ": " +
                    std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw DataError("embedding table " + quoted_path(path) + " is not a regular file");
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace

config::EmbeddingFormat embedding_format(const config::EmbeddingTableConfig& table) {
  if (table.format != config::EmbeddingFormat::kAuto) return table.format;
  const std::string ext = kEmbeddingExtension;
  return table.file.size() >= ext.size() &&
                 to_lower(table.file.substr(table.file.size() - ext.size())) == ext
             ? config::EmbeddingFormat::kBinary
             : config::EmbeddingFormat::kCsv;
}

std::shared_ptr<const EmbeddingTable> EmbeddingTable::open(
    const config::EmbeddingTableConfig& table) {
  struct Cached {
    FileStamp stamp;
    std::shared_ptr<const EmbeddingTable> table;
  };
  static std::mutex mutex;
  static std::map<std::string, Cached> cache;
  const config::EmbeddingFormat format = embedding_format(table);
  const std::string key = table.file + '\0' + enum_name(format) + '\0' + table.key.describe() +
                          '\0' + std::to_string(table.csv.delimiter_char()) +
                          (table.csv.header ? "h" : "-") + '\0' + std::to_string(table.dim);
  const FileStamp stamp = stamp_of(table.file);
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = cache.find(key);
  if (it != cache.end() && it->second.stamp == stamp) return it->second.table;
  std::shared_ptr<EmbeddingTable> t(new EmbeddingTable());
  t->path_ = table.file;
  if (format == config::EmbeddingFormat::kBinary)
    t->map_binary(table);
  else
    t->read_csv(table);
  cache[key] = {stamp, t};
  return t;
}

EmbeddingTable::~EmbeddingTable() {
  if (mapping_) ::munmap(mapping_, mapping_size_);
}

std::int64_t EmbeddingTable::find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? -1 : it->second;
}

void EmbeddingTable::index_keys(const std::vector<std::size_t>& lines) {
  index_.reserve(keys_.size());
  for (std::size_t r = 0; r < keys_.size(); ++r) {
    const auto [it, inserted] = index_.emplace(keys_[r], static_cast<std::int64_t>(r));
    if (inserted) continue;
    const auto first = static_cast<std::size_t>(it->second);
    throw DataError(
        "embedding table " + quoted_path(path_) + ": key " + quoted_value(keys_[r]) + " is on " +
        (lines.empty()
             ? "rows " + std::to_string(first + 1) + " and " + std::to_string(r + 1)
             : "lines " + std::to_string(lines[first]) + " and " + std::to_string(lines[r])) +
        "; a table holds one vector per id");
  }
}

void EmbeddingTable::read_csv(const config::EmbeddingTableConfig& table) {
  checksum_ = file_checksum(path_);
  data::CsvOptions options;
  options.delimiter = table.csv.delimiter_char();
  options.header = table.csv.header;
  data::CsvReader reader(path_, options);
  const std::size_t width = reader.width();
  const std::string where = "embedding table " + quoted_path(path_);
  if (width < 2)
    throw DataError(where + " has " + count_of(static_cast<long long>(width), "column") +
                    "; a CSV table is a key column, then one column per vector component");
  std::size_t key_column = 0;
  if (table.key.position > 0) {
    if (static_cast<std::size_t>(table.key.position) > width)
      throw DataError(where + ": key = " + std::to_string(table.key.position) + ", but it has " +
                      std::to_string(width) + " columns");
    key_column = static_cast<std::size_t>(table.key.position - 1);
  } else if (!table.key.name.empty()) {
    const auto& header = reader.header();
    std::size_t found = header.size();
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == table.key.name) found = i;
    if (found == header.size())
      throw DataError(where + ": key = '" + table.key.name + "' is not one of its columns (" +
                      join(header, ", ") + ")");
    key_column = found;
  }
  dim_ = table.dim > 0 ? table.dim : static_cast<int>(width - 1);
  if (width - 1 != static_cast<std::size_t>(dim_))
    throw DataError(where + " has " + std::to_string(width - 1) +
                    " values after the key on its first line; dim = " + std::to_string(dim_) +
                    " was declared");
  std::vector<std::size_t> lines;
  data::CsvRecord record;
  while (reader.next(record)) {
    const std::string at = printable(path_) + ":" + std::to_string(record.line) + ": ";
    if (!record.error.empty()) throw DataError(at + record.error);
    if (record.fields.size() != width)
      throw DataError(at + std::to_string(record.fields.size() - 1) +
                      " values after the key; dim = " + std::to_string(dim_) +
                      " was declared (a key and " + std::to_string(dim_) + " numbers per row)");
    if (record.fields[key_column].empty()) throw DataError(at + "the key is empty");
    keys_.emplace_back(record.fields[key_column]);
    for (std::size_t c = 0; c < width; ++c) {
      if (c == key_column) continue;
      const auto v = parse_double(trim(record.fields[c]));
      if (!v || !finite_float(*v))
        throw DataError(at + "column " + std::to_string(c + 1) + " is " +
                        quoted_value(record.fields[c]) +
                        "; vector components are finite numbers that fit a 32-bit float");
      storage_.push_back(static_cast<float>(*v));
    }
    lines.push_back(record.line);
  }
  if (keys_.empty()) throw DataError(where + " has no rows");
  rows_ = static_cast<std::int64_t>(keys_.size());
  values_ = storage_.data();
  index_keys(lines);
}

void EmbeddingTable::map_binary(const config::EmbeddingTableConfig& table) {
  const std::string where = "embedding table " + quoted_path(path_);
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError("cannot open " + where + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw DataError("cannot read " + where + ": " + std::strerror(error));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < kEmbeddingHeaderSize) {
    ::close(fd);
    throw DataError(where + " is truncated: " + std::to_string(size) +
                    " bytes, less than the 64-byte header of the binary format");
  }
  void* map = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);
  if (map == MAP_FAILED) throw DataError("cannot map " + where + ": " + std::strerror(map_error));
  mapping_ = map;
  mapping_size_ = static_cast<std::size_t>(size);
  const auto* bytes = static_cast<const unsigned char*>(map);
  if (std::memcmp(bytes, kEmbeddingMagic, sizeof kEmbeddingMagic) != 0)
    throw DataError(where + " does not start with the binary format's magic \"MLEMBTBL\"" +
                    " (format \"binary\", or \"auto\" and a name ending in .mlemb); a CSV table "
                    "needs format \"csv\"");
  Header h;
  h.version = read_le<std::uint32_t>(bytes + 8);
  h.key_type = read_le<std::uint32_t>(bytes + 12);
  h.rows = read_le<std::uint64_t>(bytes + 16);
  h.dim = read_le<std::uint64_t>(bytes + 24);
  h.vectors_offset = read_le<std::uint64_t>(bytes + 32);
  h.keys_offset = read_le<std::uint64_t>(bytes + 40);
  h.keys_size = read_le<std::uint64_t>(bytes + 48);
  if (h.version > kEmbeddingVersion)
    throw DataError(where + " is of format version " + std::to_string(h.version) +
                    "; this build reads version " + std::to_string(kEmbeddingVersion) +
                    " (a newer metalearn wrote it)");
  if (h.version == 0 || h.key_type != kEmbeddingStringKeys)
    throw DataError(where + " has version " + std::to_string(h.version) + " and key type " +
                    std::to_string(h.key_type) + "; expected version 1 and key type 1");
  if (h.dim == 0 || h.dim > static_cast<std::uint64_t>(config::kMaxEmbeddingTableDim))
    throw DataError(where + " declares dim " + std::to_string(h.dim) + "; expected 1 to " +
                    std::to_string(config::kMaxEmbeddingTableDim));
  if (table.dim > 0 && h.dim != static_cast<std::uint64_t>(table.dim))
    throw DataError(where + " holds vectors of dim " + std::to_string(h.dim) +
                    "; dim = " + std::to_string(table.dim) + " was declared");
  // rows * dim * 4 must fit the file before it is multiplied out: no overflow past this.
  if (h.rows == 0 || h.rows > size / (4 * h.dim))
    throw DataError(where + " declares " + std::to_string(h.rows) + " rows of dim " +
                    std::to_string(h.dim) + ", which " +
                    (h.rows == 0
                         ? std::string("is none")
                         : "its " + std::to_string(size) + " bytes cannot hold: truncated"));
  const std::uint64_t vectors_end = kEmbeddingHeaderSize + 4 * h.rows * h.dim;
  if (h.vectors_offset != kEmbeddingHeaderSize || h.keys_offset != vectors_end)
    throw DataError(where + " places its vectors at " + std::to_string(h.vectors_offset) +
                    " and its keys at " + std::to_string(h.keys_offset) + "; expected 64 and " +
                    std::to_string(vectors_end));
  if (h.keys_size > size || h.keys_offset + h.keys_size != size)
    throw DataError(where + " is " + std::to_string(size) + " bytes; its header says " +
                    std::to_string(h.keys_offset + h.keys_size) +
                    (h.keys_offset + h.keys_size > size ? " (truncated)" : ""));
  rows_ = static_cast<std::int64_t>(h.rows);
  dim_ = static_cast<int>(h.dim);
  values_ = reinterpret_cast<const float*>(bytes + h.vectors_offset);
  keys_.reserve(static_cast<std::size_t>(h.rows));
  std::uint64_t at = h.keys_offset;
  for (std::uint64_t r = 0; r < h.rows; ++r) {
    if (size - at < 4 || size - at - 4 < read_le<std::uint32_t>(bytes + at))
      throw DataError(where + " is truncated: its key block ends inside key " +
                      std::to_string(r + 1) + " of " + std::to_string(h.rows));
    const std::uint32_t length = read_le<std::uint32_t>(bytes + at);
    keys_.push_back(
        cell_escaped(std::string_view(reinterpret_cast<const char*>(bytes + at + 4), length)));
    if (keys_.back().empty())
      throw DataError(where + ": the key of row " + std::to_string(r + 1) + " is empty");
    at += 4 + length;
  }
  for (std::int64_t r = 0; r < rows_; ++r)
    for (int c = 0; c < dim_; ++c)
      if (!std::isfinite(row(r)[c]))
        throw DataError(where + ": row " + std::to_string(r + 1) + " (key " +
                        quoted_value(keys_[static_cast<std::size_t>(r)]) + ") value " +
                        std::to_string(c + 1) + " is " + std::to_string(row(r)[c]) +
                        "; vectors must be finite");
  checksum_ = checksum64(bytes, mapping_size_);
  index_keys({});
}

void write_embedding_binary(const std::string& path, const std::vector<std::string>& keys,
                            const float* values, int dim) {
  if (dim < 1 || dim > config::kMaxEmbeddingTableDim)
    throw DataError("'" + path + "': an embedding table's dim is 1 to " +
                    std::to_string(config::kMaxEmbeddingTableDim) + ", not " + std::to_string(dim));
  const std::uint64_t rows = keys.size();
  std::uint64_t keys_size = 0;
  for (std::uint64_t r = 0; r < rows; ++r) {
    if (keys[r].size() > std::numeric_limits<std::uint32_t>::max())
      throw DataError("embedding key " + std::to_string(r + 1) + " is longer than 4 GiB");
    keys_size += 4 + keys[r].size();
    for (int c = 0; c < dim; ++c)
      if (!std::isfinite(values[r * static_cast<std::uint64_t>(dim) + static_cast<unsigned>(c)]))
        throw DataError("embedding row " + std::to_string(r + 1) + " (key " +
                        quoted_value(keys[r]) + ") holds a non-finite value");
  }
  write_file_atomically(path, [&](std::ostream& out) {
    auto put = [&](auto v) { out.write(reinterpret_cast<const char*>(&v), sizeof v); };
    out.write(kEmbeddingMagic, sizeof kEmbeddingMagic);
    put(kEmbeddingVersion);
    put(kEmbeddingStringKeys);
    put(rows);
    put(static_cast<std::uint64_t>(dim));
    put(kEmbeddingHeaderSize);
    put(kEmbeddingHeaderSize + 4 * rows * static_cast<std::uint64_t>(dim));
    put(keys_size);
    put(std::uint64_t{0});
    out.write(reinterpret_cast<const char*>(values),
              static_cast<std::streamsize>(4 * rows * static_cast<std::uint64_t>(dim)));
    for (const auto& k : keys) {
      put(static_cast<std::uint32_t>(k.size()));
      out.write(k.data(), static_cast<std::streamsize>(k.size()));
    }
  });
}

std::int64_t convert_embedding_table(const config::EmbeddingTableConfig& input,
                                     const std::string& output) {
  if (same_file(input.file, output))
    throw UsageError("--output '" + output + "' is the --input table; give another file name");
  const auto table = EmbeddingTable::open(input);
  std::vector<std::string> keys;
  keys.reserve(static_cast<std::size_t>(table->rows()));
  for (std::int64_t r = 0; r < table->rows(); ++r) keys.push_back(cell_unescaped(table->key(r)));
  write_embedding_binary(output, keys, table->row(0), table->dim());
  return table->rows();
}

}  // namespace ml::features
