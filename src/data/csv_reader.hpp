// Streaming CSV reader for logs as shops export them: RFC 4180 quoting (embedded delimiters,
// doubled quotes, newlines inside quotes), LF, CRLF or bare CR (classic Mac) line ends, UTF-8
// BOM, empty cells, header or not, `,` `\t` `;` `|` or space delimiters (auto-detected from the
// first record when not given), and a trailing delimiter that the header lacks.
// Reads the file through a large buffer and hands out string_views straight into it (quoted
// fields are unescaped in place), so no cell is copied or allocated and the file is never held
// in memory whole. A reader can also cover one byte range of a file, so that a large file is
// parsed by several threads (see CsvPart).
//
// Every cell handed out is valid UTF-8: a byte that is not (a Latin-1 or Windows-1252 export)
// is kept, written as the four characters `\xHH` (util/utf8.hpp), and counted, and a backslash
// in a data cell is doubled (`\\`, unless CsvOptions::double_backslashes is false), so that names
// and ids reach reports and checkpoints intact and distinct (a cell holding the text `\xE9` is not
// the byte 0xE9). A file that holds NUL bytes at its start (gzip, ZIP/xlsx, UTF-16, any binary) is
// refused as not a text CSV file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ml::data {

struct CsvOptions {
  char delimiter = 0;  // 0: detect from the first record among ',' '\t' ';' '|' ' '
  bool header = true;  // first record holds column names
  char quote = '"';
  // Data cells get their backslashes doubled, so that the escape of bytes that are not UTF-8
  // stays injective for ids (see the top of this file). false for free text (titles, utterances,
  // JSON-wrapped category paths), whose backslashes are content: cells that are not UTF-8 are still
  // written
  // `\xHH`, and a typed-out `\xE9` then reads the same, which text features can live with.
  bool double_backslashes = true;
};

// One record. Views stay valid until the next call to CsvReader::next().
struct CsvRecord {
  std::vector<std::string_view> fields;
  std::size_t line = 0;  // 1-based physical line on which the record starts (within the part)
  std::string error;     // non-empty when the record is malformed (e.g. "unclosed quote")
};

// A byte range of a file that a reader parses on its own: records that start in
// [begin, end). `begin` must be where a line starts (0, or just after a line end); whether it is
// also outside any quoted field is only known once the part before it has been parsed, which
// is why parallel parsing checks that the previous part stopped exactly at `begin`.
struct CsvPart {
  std::uint64_t begin = 0, end = 0;
  char delimiter = ',';       // of the whole file (a part does not see its first record)
  std::size_t width = 0;      // of the whole file, see CsvReader::width()
  bool cr_line_ends = false;  // of the whole file, see CsvReader::cr_line_ends()
};

// Cells that were not valid UTF-8 and were handed out escaped: how many, and the first.
struct NonUtf8Cells {
  std::size_t cells = 0;
  std::size_t line = 0;    // of the first, as CsvRecord::line counts (0: none)
  std::size_t column = 0;  // 1-based field of the first
  unsigned char byte = 0;  // its first byte that is not UTF-8
};

class CsvReader {
 public:
  // Throws DataError naming the path when the file cannot be opened, is not a text file (NUL
  // bytes or a UTF-16 byte-order mark in its first buffer), or its header is malformed.
  CsvReader(const std::string& path, CsvOptions options);
  // Reads one part of a file: no BOM, header or delimiter detection; lines count from 1 at
  // part.begin.
  CsvReader(const std::string& path, CsvOptions options, const CsvPart& part);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record (skipping completely empty lines); false at end of file, or for a
  // part, at the first line that starts at or after its end. A record with one field more than
  // width() whose last field is empty loses that field: a trailing delimiter on every data row
  // that the header lacks (as pandas and DuckDB read it); a non-empty extra field stays, for
  // the caller to reject.
  bool next(CsvRecord& record);

  const std::string& path() const { return path_; }
  char delimiter() const { return delimiter_; }
  // Whether delimiter() was detected (CsvOptions::delimiter 0) rather than given.
  bool delimiter_detected() const { return options_.delimiter == 0; }
  // Whether the file ends its lines with a bare CR (classic Mac), judged by the first line end:
  // a CR inside quotes then counts as a line for CsvRecord::line, as an editor shows it. A bare
  // CR outside quotes ends a record in any file.
  bool cr_line_ends() const { return cr_line_ends_; }
  // Cells escaped so far because they were not valid UTF-8 (the header's included).
  const NonUtf8Cells& non_utf8() const { return non_utf8_; }
  // Column names from the header record; empty for headerless files.
  const std::vector<std::string>& header() const { return header_; }
  // Number of fields in the first record (header or first data record); 0 for an empty file.
  std::size_t width() const { return width_; }
  // Bytes consumed so far (from the part's start).
  std::size_t bytes_read() const { return static_cast<std::size_t>(offset() - begin_); }
  // File offset of the first byte not yet consumed, and the line it is on: where a part
  // stopped, so the next part can be checked against it.
  std::uint64_t offset() const { return buffer_offset_ + pos_; }
  std::size_t line() const { return line_; }
  // Stops before the first line that starts at or after `end`. Also moves the end of a reader
  // that stopped: when the next part turned out not to start at a record, this reader takes
  // over its bytes.
  void set_end(std::uint64_t end) { end_offset_ = end; }
  std::uint64_t file_size() const { return file_size_; }

 private:
  // Large enough that read calls are rare next to the parsing work. A record longer than the
  // buffer grows it, since a record is always parsed whole from inside the buffer.
  static constexpr std::size_t kBufferSize = std::size_t{1} << 20;

  // A field as scanned: raw bytes, and whether they need unquoting.
  struct RawField {
    std::size_t begin, end;  // offsets into buffer_
    bool quoted;
  };
  enum class Scan { kRecord, kEmptyLine, kNeedMore, kEnd };

  void open();
  bool refill();  // keeps the unconsumed bytes, reads more after them; false at end of file
  // `seen`: every byte of the record ORed together (and maybe a few after it), which tells
  // whether it may hold bytes that are not ASCII.
  Scan scan_record(std::size_t& pos, std::size_t& newlines, const char*& error,
                   std::uint64_t& seen);
  bool parse_record(CsvRecord& record);
  void detect_delimiter();
  void check_text_file() const;
  void detect_line_ends();
  // Escapes the record's cells that are not UTF-8, and with `backslash` (and cell_escapes_)
  // those that hold a backslash, as util/utf8.hpp's append_cell_escaped says.
  void escape_cells(CsvRecord& record, bool backslash);

  std::string path_;
  CsvOptions options_;
  int fd_ = -1;
  bool seekable_ = true;
  std::uint64_t file_size_ = 0;
  std::vector<char> buffer_;
  std::size_t pos_ = 0, end_ = 0;    // unconsumed bytes are buffer_[pos_, end_)
  std::uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  std::uint64_t begin_ = 0;          // file offset where this reader started
  std::uint64_t end_offset_;         // no record starts at or after this offset
  bool eof_ = false;
  std::size_t line_ = 1;
  char delimiter_ = ',';
  std::vector<std::string> header_;
  std::size_t width_ = 0;
  std::vector<RawField> raw_;
  bool cr_line_ends_ = false;
  NonUtf8Cells non_utf8_;
  std::string escaped_;  // the current record's escaped cells, which its views point into
  // Data cells: backslashes doubled too (false for a header, or with !double_backslashes).
  bool cell_escapes_ = true;
  bool has_pending_ = false;  // first data record, parsed early to learn width()
  CsvRecord pending_;
};

}  // namespace ml::data
