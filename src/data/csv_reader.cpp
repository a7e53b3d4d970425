// Streaming CSV reader: records are scanned whole inside a large read buffer (the unconsumed
// tail is moved to the front and more is read when a record runs past the end), so every field
// is a view into the buffer. Scanning does not modify the bytes, which makes it safe to start a
// record over after a refill; quoted fields are unescaped in place only once the record is
// complete.
#include "data/csv_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace ml::data {

namespace {

constexpr char kUnclosedQuote[] = "unclosed quote";
constexpr char kCharAfterQuote[] = "unexpected character after closing quote";

std::string system_error_text(int err) {
  return err != 0 ? std::strerror(err) : "read error";
}

// First byte in [p, e) that is `delim`, '\n' or '\r', or e. Eight bytes per step (SWAR): most
// cells are short, but ids, dates and titles are long enough for this to beat a byte loop.
// The two line-end bytes are found as bytes below 0x0E (one test instead of two); the other
// control bytes that this also finds are rare in a CSV and skipped. ORs every byte it looks
// at (and a few past the hit) into `seen`, so that the caller learns for free whether a byte
// >= 0x80 was there: records without one are ASCII, hence valid UTF-8, which is nearly every
// record of a log.
inline const char* find_field_end(const char* p, const char* e, char delim, std::uint64_t& seen) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  const std::uint64_t wd = kOnes * static_cast<unsigned char>(delim);
  auto is_end = [delim](char c) { return c == delim || c == '\n' || c == '\r'; };
  for (;;) {
    while (e - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      seen |= w;
      const std::uint64_t xd = w ^ wd;
      const std::uint64_t hit = ((xd - kOnes) & ~xd & kHighs) | ((w - kOnes * 0x0E) & ~w & kHighs);
      if (hit != 0) {
        p += __builtin_ctzll(hit) >> 3;  // little-endian: lowest byte first
        break;
      }
      p += 8;
    }
    for (; p != e && !is_end(*p) && static_cast<unsigned char>(*p) >= 0x0E; ++p)
      seen |= static_cast<unsigned char>(*p);
    if (p == e || is_end(*p)) return p;
    ++p;  // another control byte: part of the cell
  }
}

// ORs the bytes of [p, e) into `seen` (see find_field_end), eight at a time.
inline void see_bytes(const char* p, const char* e, std::uint64_t& seen) {
  for (; e - p >= 8; p += 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    seen |= w;
  }
  for (; p != e; ++p) seen |= static_cast<unsigned char>(*p);
}

inline bool has_high_byte(std::uint64_t seen) {
  return (seen & 0x8080808080808080ull) != 0;
}

// Line ends in [p, e), the inside of a quoted field: every LF, and with `cr_lines` every CR
// not followed by an LF in the range.
inline std::size_t count_line_ends(const char* p, const char* e, bool cr_lines) {
  std::size_t n = static_cast<std::size_t>(std::count(p, e, '\n'));
  if (cr_lines)
    for (const char* c = p; c != e; ++c)
      if (*c == '\r' && (c + 1 == e || c[1] != '\n')) ++n;
  return n;
}

// Unescapes a quoted field in place: drops the opening and closing quotes, turns "" into ",
// and keeps any bytes after the closing quote as they are (the reader flags those as an
// error but still returns them). Returns the new end.
char* unquote_in_place(char* begin, char* end, char quote) {
  char* w = begin;
  const char* r = begin + 1;
  while (r != end) {
    if (*r != quote) {
      *w++ = *r++;
    } else if (r + 1 != end && r[1] == quote) {
      *w++ = quote;
      r += 2;
    } else {
      ++r;  // the closing quote
      while (r != end) *w++ = *r++;
    }
  }
  return w;
}

}  // namespace

CsvReader::CsvReader(const std::string& path, CsvOptions options)
    : path_(path),
      options_(options),
      end_offset_(std::numeric_limits<std::uint64_t>::max()),
      delimiter_(options.delimiter) {
  open();
  refill();
  check_text_file();
  if (end_ >= 3 && std::memcmp(buffer_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;
  detect_line_ends();
  if (delimiter_ == 0) detect_delimiter();

  CsvRecord first;
  // A header's names are compared with the config's as they are written: only data cells get
  // their backslashes doubled.
  cell_escapes_ = !options_.header && options_.double_backslashes;
  const bool parsed = parse_record(first);
  cell_escapes_ = options_.double_backslashes;
  if (!parsed) return;  // empty file: no header, width 0
  width_ = first.fields.size();
  if (options_.header) {
    // The header cannot be handed back with an error flag like data records, and a broken one
    // (typically an unclosed quote swallowing the whole file) leaves nothing usable.
    if (!first.error.empty()) {
      throw DataError("malformed header in data file '" + path + "' (line " +
                      std::to_string(first.line) + "): " + first.error);
    }
    header_.assign(first.fields.begin(), first.fields.end());
  } else {
    pending_ = std::move(first);
    has_pending_ = true;
  }
}

CsvReader::CsvReader(const std::string& path, CsvOptions options, const CsvPart& part)
    : path_(path),
      options_(options),
      buffer_offset_(part.begin),
      begin_(part.begin),
      end_offset_(part.end),
      delimiter_(part.delimiter),
      width_(part.width),
      cr_line_ends_(part.cr_line_ends),
      cell_escapes_(options.double_backslashes) {
  open();
}

CsvReader::~CsvReader() {
  if (fd_ >= 0) ::close(fd_);
}

void CsvReader::open() {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw DataError("cannot open data file '" + path_ + "': " + system_error_text(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
    file_size_ = static_cast<std::uint64_t>(st.st_size);
    ::posix_fadvise(fd_, static_cast<off_t>(begin_), 0, POSIX_FADV_SEQUENTIAL);
  }
  buffer_.resize(kBufferSize);
}

bool CsvReader::refill() {
  if (eof_) return false;
  // Keep the unconsumed bytes (the start of a record cut by the buffer's end) at the front.
  if (pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + pos_, end_ - pos_);
    buffer_offset_ += pos_;
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);  // one record fills it
  for (;;) {
    // pread lets several readers share nothing but the path; pipes cannot seek, so they read.
    char* const into = buffer_.data() + end_;
    const std::size_t room = buffer_.size() - end_;
    ssize_t n = seekable_ ? ::pread(fd_, into, room, static_cast<off_t>(buffer_offset_ + end_))
                          : ::read(fd_, into, room);
    if (n < 0 && errno == ESPIPE && seekable_) {
      seekable_ = false;
      continue;
    }
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno != EINTR) {
      throw DataError("cannot read data file '" + path_ + "': " + system_error_text(errno));
    }
  }
}

// Binary files (compressed, spreadsheets, images) and UTF-16 text hold NUL bytes from their
// first bytes on and densely (UTF-16: every other byte), so the first buffer is enough to tell,
// and the reader never hands such bytes out as a header. A text export may hold a stray NUL in
// a cell (NUL-padded fields): that is a bad row for the cell's parser, not a binary file, so a
// file is refused only when its first line holds a NUL or more than 1% of the bytes are NULs.
void CsvReader::check_text_file() const {
  const std::string_view head(buffer_.data(), end_);
  auto refuse = [&](const std::string& why) {
    throw DataError("data file '" + path_ + "' is not a text CSV file: " + why);
  };
  if (starts_with(head, "\xFF\xFE") || starts_with(head, "\xFE\xFF"))
    refuse("it is UTF-16 text; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)");
  const std::size_t nul = head.find('\0');
  // The formats a shop export is mistaken for, by their first bytes. The ones spelled in
  // letters a header could start with count only with a NUL in the file, as binary files have.
  struct Magic {
    std::string_view bytes;
    bool needs_nul;
    const char* what;
  };
  static constexpr Magic kMagics[] = {
      {"\x1F\x8B", false, "it is gzip-compressed; decompress it first"},
      {"PK\x03\x04", false,
       "it is a ZIP archive (an .xlsx workbook is one); export the sheet as CSV"},
      {"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", false,
       "it is an Excel 97-2003 workbook (.xls); export the sheet as CSV"},
      {"%PDF-", false, "it is a PDF document"},
      {std::string_view("SQLite format 3\0", 16), false,
       "it is an SQLite database; export a table as CSV"},
      {"\xFD"
       "7zXZ",
       false, "it is xz-compressed; decompress it first"},
      {"\x28\xB5\x2F\xFD", false, "it is zstd-compressed; decompress it first"},
      {"7z\xBC\xAF\x27\x1C", false, "it is a 7-Zip archive; extract it first"},
      {"BZh", true, "it is bzip2-compressed; decompress it first"},
      {"PAR1", true, "it is a Parquet file; export it as CSV"},
  };
  for (const Magic& m : kMagics)
    if (starts_with(head, m.bytes) && (!m.needs_nul || nul != std::string_view::npos))
      refuse(m.what);
  if (nul == std::string_view::npos) return;
  const std::size_t first_line_end = head.find_first_of("\n\r");
  const auto nuls = static_cast<std::size_t>(std::count(head.begin(), head.end(), '\0'));
  if (nul < first_line_end || nuls * 100 > head.size())
    refuse("it holds a NUL byte at offset " + std::to_string(nul));
}

// The first line end outside quotes decides whether a CR inside a quoted field counts as a
// line (see cr_line_ends()); a file without a line end in its first buffer is LF-style.
void CsvReader::detect_line_ends() {
  bool in_quotes = false;
  for (std::size_t i = pos_; i < end_; ++i) {
    const char c = buffer_[i];
    if (c == options_.quote) in_quotes = !in_quotes;  // "" toggles twice: no harm
    if (in_quotes || (c != '\n' && c != '\r')) continue;
    cr_line_ends_ = c == '\r' && (i + 1 == end_ ? eof_ : buffer_[i + 1] != '\n');
    return;
  }
}

// Scans the raw bytes of the first non-empty record without consuming them, so the real parse
// afterwards sees the record as if the delimiter had been given. A quote only opens a quoted
// section at a field start, and any candidate counts as a field boundary here, which matches
// the parser for whichever candidate wins.
void CsvReader::detect_delimiter() {
  static constexpr char kCandidates[] = {',', '\t', ';', '|', ' '};
  constexpr int kSpace = 4;
  std::size_t counts[5] = {0, 0, 0, 0, 0};
  const char quote = options_.quote;
  enum { kStart, kPlain, kInQuotes, kQuoteSeen } state = kStart;
  bool content = false;            // the line holds more than CR bytes (empty lines are skipped)
  for (std::size_t i = 0;; ++i) {  // i counts from pos_, which a refill may move
    if (pos_ + i == end_ && !refill()) break;
    const char c = buffer_[pos_ + i];
    if (state == kInQuotes) {
      if (c == quote) state = kQuoteSeen;
      continue;
    }
    if (state == kQuoteSeen) {
      if (c == quote) {
        state = kInQuotes;
        continue;
      }
      state = kPlain;
    }
    if (c == '\n' || c == '\r') {
      if (content) break;
      state = kStart;
      continue;
    }
    const char* hit = std::find(std::begin(kCandidates), std::end(kCandidates), c);
    if (hit != std::end(kCandidates)) {
      ++counts[hit - kCandidates];
      content = true;
      state = kStart;
    } else if (c == quote && state == kStart) {
      content = true;
      state = kInQuotes;
    } else {
      content = true;
      state = kPlain;
    }
  }
  delimiter_ = ',';
  std::size_t best = 0;
  for (int k = 0; k < kSpace; ++k) {
    if (counts[k] > best) {
      best = counts[k];
      delimiter_ = kCandidates[k];
    }
  }
  // Space separates words inside cells too, so it only wins when nothing else is there.
  if (best == 0 && counts[kSpace] > 0) delimiter_ = ' ';
}

bool CsvReader::next(CsvRecord& record) {
  if (has_pending_) {
    has_pending_ = false;
    record.fields.swap(pending_.fields);
    record.error.swap(pending_.error);
    record.line = pending_.line;
    return true;
  }
  return parse_record(record);
}

// Scans one physical line (more when quotes span lines) from buffer_[pos]. On kRecord and
// kEmptyLine, `pos` is advanced past it and raw_ holds its fields; on kNeedMore nothing is
// consumed (the record runs past the buffer and the file has more); kEnd: nothing is left.
CsvReader::Scan CsvReader::scan_record(std::size_t& pos, std::size_t& newlines, const char*& error,
                                       std::uint64_t& seen) {
  raw_.clear();
  newlines = 0;
  error = nullptr;
  seen = 0;
  const bool at_eof = eof_;
  const char delim = delimiter_;
  const char quote = options_.quote;
  const bool cr_lines = cr_line_ends_;
  const char* const base = buffer_.data();
  const char* const e = base + end_;
  const char* p = base + pos;
  bool saw_quote = false;  // `""` alone on a line is a record, not an empty line
  auto add = [&](const char* begin, const char* end, bool quoted) {
    raw_.push_back(
        {static_cast<std::size_t>(begin - base), static_cast<std::size_t>(end - base), quoted});
  };

  for (;;) {  // once per field
    const char* const field_begin = p;
    bool quoted = false;
    if (p == e) {
      if (!at_eof) return Scan::kNeedMore;
      if (raw_.empty()) return Scan::kEnd;
      add(p, p, false);  // after a trailing delimiter there is one more, empty, field
      break;
    }
    if (*p == quote) {
      quoted = saw_quote = true;
      ++p;
      for (;;) {  // to the closing quote, over doubled ones
        const void* hit = std::memchr(p, quote, static_cast<std::size_t>(e - p));
        if (hit == nullptr) {
          if (!at_eof) return Scan::kNeedMore;
          newlines += count_line_ends(p, e, cr_lines);
          see_bytes(p, e, seen);
          error = kUnclosedQuote;
          add(field_begin, e, true);
          pos = static_cast<std::size_t>(e - base);
          return Scan::kRecord;
        }
        const char* q = static_cast<const char*>(hit);
        newlines += count_line_ends(p, q, cr_lines);
        see_bytes(p, q, seen);
        p = q + 1;
        if (p == e && !at_eof) return Scan::kNeedMore;  // "" or the closing quote?
        if (p != e && *p == quote) {
          ++p;
          continue;
        }
        break;
      }
      if (p == e) {  // closing quote at end of file
        add(field_begin, p, true);
        break;
      }
      if (*p == delim) {
        add(field_begin, p, true);
        ++p;
        continue;
      }
      if (*p == '\n') {
        add(field_begin, p, true);
        ++p;
        ++newlines;
        break;
      }
      if (*p == '\r') {  // CRLF, or a bare CR: a line end either way
        if (p + 1 == e && !at_eof) return Scan::kNeedMore;
        add(field_begin, p, true);
        p += p + 1 != e && p[1] == '\n' ? 2 : 1;
        ++newlines;
        break;
      }
      // Keep the stray bytes as part of the field and carry on unquoted, so the rest of the
      // record still splits into the right fields and the next record is intact.
      if (error == nullptr) error = kCharAfterQuote;
    }
    const char* q = find_field_end(p, e, delim, seen);
    if (q == e && !at_eof) return Scan::kNeedMore;
    if (q != e && *q == delim) {
      add(field_begin, q, quoted);
      p = q + 1;
      continue;
    }
    // End of line (LF, CRLF or a bare CR) or of file. Only bytes scanned unquoted are looked
    // at, so a CR inside the quotes survives.
    add(field_begin, q, quoted);
    if (q == e) {
      p = e;
    } else if (*q == '\r') {
      if (q + 1 == e && !at_eof) return Scan::kNeedMore;  // CRLF cut by the buffer's end?
      p = q + 1 != e && q[1] == '\n' ? q + 2 : q + 1;
      ++newlines;
    } else {
      p = q + 1;
      ++newlines;
    }
    break;
  }
  pos = static_cast<std::size_t>(p - base);
  if (raw_.size() == 1 && raw_[0].begin == raw_[0].end && !saw_quote) return Scan::kEmptyLine;
  return Scan::kRecord;
}

bool CsvReader::parse_record(CsvRecord& record) {
  record.fields.clear();
  record.error.clear();
  for (;;) {  // repeats over empty lines and refills
    if (offset() >= end_offset_) return false;
    if (pos_ == end_ && !refill()) return false;
    std::size_t pos = pos_, newlines = 0;
    const char* error = nullptr;
    std::uint64_t seen = 0;
    const Scan scan = scan_record(pos, newlines, error, seen);
    if (scan == Scan::kNeedMore) {
      refill();  // at end of file the next scan finishes the record with what there is
      continue;
    }
    if (scan == Scan::kEnd) {
      pos_ = end_;
      return false;
    }
    pos_ = pos;
    const std::size_t line = line_;
    line_ += newlines;
    if (scan == Scan::kEmptyLine) continue;

    record.line = line;
    if (error != nullptr) record.error = error;
    record.fields.reserve(raw_.size());
    char* const base = buffer_.data();
    // One memchr over the record's bytes: a backslash is rare in a log, and a cell that holds
    // one is escaped (escape_cells) so that it cannot read as an escaped byte.
    const bool backslash = cell_escapes_ && !raw_.empty() &&
                           std::memchr(base + raw_.front().begin, '\\',
                                       raw_.back().end - raw_.front().begin) != nullptr;
    for (const RawField& f : raw_) {
      char* begin = base + f.begin;
      char* end = base + f.end;
      if (f.quoted) {
        end = unquote_in_place(begin, end, options_.quote);
      }
      record.fields.emplace_back(begin, static_cast<std::size_t>(end - begin));
    }
    if (width_ > 0 && record.fields.size() == width_ + 1 && record.fields.back().empty())
      record.fields.pop_back();
    if (backslash || has_high_byte(seen)) escape_cells(record, backslash);
    return true;
  }
}

// Rare (a file in another encoding, a damaged one, a backslash in a cell), so it may allocate:
// the escaped cells are built in escaped_ first and the views pointed at them afterwards, since
// appending can move escaped_'s bytes. Only cells that are not UTF-8 are counted as such.
void CsvReader::escape_cells(CsvRecord& record, bool backslash) {
  struct Span {
    std::size_t field, begin, end;  // [begin, end) of escaped_
  };
  std::vector<Span> spans;
  escaped_.clear();
  for (std::size_t i = 0; i < record.fields.size(); ++i) {
    const std::string_view field = record.fields[i];
    const std::size_t bad = invalid_utf8_at(field);
    if (bad == std::string_view::npos) {
      if (!backslash || field.find('\\') == std::string_view::npos) continue;
    } else if (non_utf8_.cells++ == 0) {
      non_utf8_.line = record.line;
      non_utf8_.column = i + 1;
      non_utf8_.byte = static_cast<unsigned char>(field[bad]);
    }
    const std::size_t begin = escaped_.size();
    if (cell_escapes_)
      append_cell_escaped(escaped_, field);
    else
      append_utf8_escaped(escaped_, field);  // a header's names
    spans.push_back({i, begin, escaped_.size()});
  }
  const std::string_view all(escaped_);
  for (const Span& span : spans)
    record.fields[span.field] = all.substr(span.begin, span.end - span.begin);
}

}  // namespace ml::data
