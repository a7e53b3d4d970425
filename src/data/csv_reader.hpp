// Streaming CSV reader for logs as shops export them: RFC 4180 quoting (embedded delimiters,
// doubled quotes, newlines inside quotes), CRLF or LF, UTF-8 BOM, empty cells, header or not,
// `,` `\t` `;` or space delimiters (auto-detected from the first record when not given).
// Reads the file through a large buffer and hands out string_views into one reusable record
// buffer, so no per-cell string is allocated and the file is never held in memory whole.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ml::data {

struct CsvOptions {
  char delimiter = 0;  // 0: detect from the first record among ',' '\t' ';' ' '
  bool header = true;  // first record holds column names
  char quote = '"';
};

// One record. Views stay valid until the next call to CsvReader::next().
struct CsvRecord {
  std::vector<std::string_view> fields;
  std::size_t line = 0;  // 1-based physical line on which the record starts
  std::string error;     // non-empty when the record is malformed (e.g. "unclosed quote")
};

class CsvReader {
 public:
  // Throws DataError naming the path when the file cannot be opened.
  CsvReader(const std::string& path, CsvOptions options);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record (skipping completely empty lines); false at end of file.
  bool next(CsvRecord& record);

  const std::string& path() const { return path_; }
  char delimiter() const { return delimiter_; }
  // Column names from the header record; empty for headerless files.
  const std::vector<std::string>& header() const { return header_; }
  // Number of fields in the first record (header or first data record); 0 for an empty file.
  std::size_t width() const { return width_; }
  std::size_t bytes_read() const { return bytes_read_; }

 private:
  // Large enough that fread calls are rare next to the parsing work. Records longer than this
  // still work: fields are copied out of the buffer as it is scanned, and the delimiter
  // detection grows the buffer until it holds the whole first record.
  static constexpr std::size_t kBufferSize = std::size_t{1} << 20;

  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };

  bool fill();       // replaces the consumed buffer with the next chunk; false at end of file
  bool read_more();  // appends the next chunk, growing the buffer; false at end of file
  bool parse_record(CsvRecord& record);
  void detect_delimiter();

  std::string path_;
  CsvOptions options_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::vector<char> buffer_;
  std::size_t pos_ = 0, end_ = 0;
  std::size_t buffer_offset_ = 0;  // file offset of buffer_[0]
  bool eof_ = false;
  std::size_t line_ = 1;
  std::size_t bytes_read_ = 0;
  char delimiter_ = ',';
  std::vector<std::string> header_;
  std::size_t width_ = 0;
  std::string field_storage_;            // unescaped bytes of the current record
  std::vector<std::size_t> field_ends_;  // offsets into field_storage_
  bool has_pending_ = false;             // first data record, parsed early to learn width()
  CsvRecord pending_;
};

// Splits `text` on delimiter, honouring quotes, for small in-memory strings (e.g. one line
// typed by a user); the streaming reader is for files.
std::vector<std::string> split_csv_line(std::string_view text, char delimiter, char quote = '"');

}  // namespace ml::data
