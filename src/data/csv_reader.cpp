// Streaming CSV reader: a byte-level state machine over a large fread buffer. Field bytes are
// unescaped into one reusable string per reader and handed out as views, so parsing allocates
// nothing per cell once the buffers have grown to the widest record.
#include "data/csv_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/errors.hpp"

namespace ml::data {

namespace {

// Where the parser is inside the current record. Kept small so the switch stays a jump table.
enum class State : unsigned char {
  kFieldStart,     // nothing of the current field seen yet
  kUnquoted,       // inside a field that did not start with a quote
  kQuoted,         // inside a quoted field
  kQuoteInQuoted,  // saw a quote inside a quoted field: either "" or the closing quote
  kAfterQuote,     // the quoted field is closed; a delimiter or line end should follow
  kAfterQuoteCr,   // a CR right after the closing quote: fine if LF or end of file follows
};

constexpr char kUnclosedQuote[] = "unclosed quote";
constexpr char kCharAfterQuote[] = "unexpected character after closing quote";

std::string system_error_text(int err) {
  return err != 0 ? std::strerror(err) : "read error";
}

}  // namespace

CsvReader::CsvReader(const std::string& path, CsvOptions options)
    : path_(path), options_(options), delimiter_(options.delimiter) {
  file_.reset(std::fopen(path.c_str(), "rb"));
  if (!file_) {
    throw DataError("cannot open data file '" + path + "': " + system_error_text(errno));
  }
  // Our own buffer is already large; a second stdio buffer would only add a copy.
  std::setvbuf(file_.get(), nullptr, _IONBF, 0);
  buffer_.resize(kBufferSize);

  if (fill() && end_ >= 3 && std::memcmp(buffer_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;
  if (delimiter_ == 0) detect_delimiter();

  CsvRecord first;
  if (!parse_record(first)) return;  // empty file: no header, width 0
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

CsvReader::~CsvReader() = default;

bool CsvReader::fill() {
  if (eof_) return false;
  buffer_offset_ += end_;
  pos_ = end_ = 0;
  const std::size_t n = std::fread(buffer_.data(), 1, buffer_.size(), file_.get());
  if (n == 0) {
    if (std::ferror(file_.get())) {
      throw DataError("cannot read data file '" + path_ + "': " + system_error_text(errno));
    }
    eof_ = true;
    return false;
  }
  end_ = n;
  return true;
}

bool CsvReader::read_more() {
  if (eof_) return false;
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  const std::size_t n = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_.get());
  if (n == 0) {
    if (std::ferror(file_.get())) {
      throw DataError("cannot read data file '" + path_ + "': " + system_error_text(errno));
    }
    eof_ = true;
    return false;
  }
  end_ += n;
  return true;
}

// Scans the raw bytes of the first non-empty record without consuming them, so the real parse
// afterwards sees the record as if the delimiter had been given. A quote only opens a quoted
// section at a field start, and any candidate counts as a field boundary here, which matches
// the parser for whichever candidate wins.
void CsvReader::detect_delimiter() {
  static constexpr char kCandidates[] = {',', '\t', ';', ' '};
  std::size_t counts[4] = {0, 0, 0, 0};
  const char quote = options_.quote;
  enum { kStart, kPlain, kInQuotes, kQuoteSeen } state = kStart;
  bool content = false;  // the line holds more than CR bytes (empty lines are skipped)
  for (std::size_t i = pos_;; ++i) {
    if (i == end_ && !read_more()) break;
    const char c = buffer_[i];
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
    if (c == '\n') {
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
      if (c != '\r') content = true;
      state = kPlain;
    }
  }
  delimiter_ = ',';
  std::size_t best = 0;
  for (int k = 0; k < 3; ++k) {
    if (counts[k] > best) {
      best = counts[k];
      delimiter_ = kCandidates[k];
    }
  }
  // Space separates words inside cells too, so it only wins when nothing else is there.
  if (best == 0 && counts[3] > 0) delimiter_ = ' ';
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

bool CsvReader::parse_record(CsvRecord& record) {
  record.fields.clear();
  record.error.clear();
  const char delim = delimiter_;
  const char quote = options_.quote;
  auto set_error = [&record](const char* what) {
    if (record.error.empty()) record.error = what;
  };

  for (;;) {  // once per physical record; repeats while the lines are empty
    field_storage_.clear();
    field_ends_.clear();
    std::size_t field_begin = 0;  // offset of the current field in field_storage_
    bool saw_quote = false;       // `""` alone on a line is a record, not an empty line
    State state = State::kFieldStart;
    record.line = line_;
    bool at_eof = false;
    bool done = false;

    // Drops a CR that ended an unquoted field: it belonged to a CRLF line end. Only bytes of
    // the current field are looked at, so a CR kept inside an earlier quoted field survives.
    auto strip_cr = [&] {
      if (field_storage_.size() > field_begin && field_storage_.back() == '\r') {
        field_storage_.pop_back();
      }
    };

    while (!done) {
      if (pos_ == end_ && !fill()) {
        at_eof = true;
        break;
      }
      // Locals, not members, in the hot loop: writes through char* may alias anything, which
      // would force the compiler to reload members after every append.
      const char* const base = buffer_.data();
      const char* p = base + pos_;
      const char* const e = base + end_;
      while (p != e && !done) {
        switch (state) {
          case State::kFieldStart:
            if (*p == quote) {
              ++p;
              saw_quote = true;
              state = State::kQuoted;
            } else {
              state = State::kUnquoted;
            }
            break;
          case State::kUnquoted: {
            const char* q = p;
            while (q != e && *q != delim && *q != '\n') ++q;
            field_storage_.append(p, q);
            p = q;
            if (q == e) break;
            ++p;
            if (*q == delim) {
              field_ends_.push_back(field_storage_.size());
              field_begin = field_storage_.size();
              state = State::kFieldStart;
            } else {
              ++line_;
              strip_cr();
              done = true;
            }
            break;
          }
          case State::kQuoted: {
            const void* hit = std::memchr(p, quote, static_cast<std::size_t>(e - p));
            const char* q = hit != nullptr ? static_cast<const char*>(hit) : e;
            line_ += static_cast<std::size_t>(std::count(p, q, '\n'));
            field_storage_.append(p, q);
            p = q;
            if (q != e) {
              ++p;
              state = State::kQuoteInQuoted;
            }
            break;
          }
          case State::kQuoteInQuoted:
            if (*p == quote) {
              field_storage_.push_back(quote);
              ++p;
              state = State::kQuoted;
            } else {
              state = State::kAfterQuote;
            }
            break;
          case State::kAfterQuote:
            if (*p == delim) {
              ++p;
              field_ends_.push_back(field_storage_.size());
              field_begin = field_storage_.size();
              state = State::kFieldStart;
            } else if (*p == '\n') {
              ++p;
              ++line_;
              done = true;
            } else if (*p == '\r') {
              ++p;
              state = State::kAfterQuoteCr;
            } else {
              // Keep the stray bytes as part of the field and carry on unquoted, so the rest of
              // the record still splits into the right fields and the next record is intact.
              set_error(kCharAfterQuote);
              state = State::kUnquoted;
            }
            break;
          case State::kAfterQuoteCr:
            if (*p == '\n') {
              ++p;
              ++line_;
              done = true;
            } else {
              set_error(kCharAfterQuote);
              field_storage_.push_back('\r');
              state = State::kUnquoted;
            }
            break;
        }
      }
      pos_ = static_cast<std::size_t>(p - base);
    }

    if (at_eof) {
      switch (state) {
        case State::kFieldStart:
          // Nothing of this record was read; after a trailing delimiter there is an empty field.
          if (field_ends_.empty()) {
            bytes_read_ = buffer_offset_ + pos_;
            return false;
          }
          break;
        case State::kUnquoted:
          strip_cr();
          break;
        case State::kQuoted:
          set_error(kUnclosedQuote);
          break;
        case State::kQuoteInQuoted:
        case State::kAfterQuote:
        case State::kAfterQuoteCr:
          break;
      }
    }

    if (field_ends_.empty() && field_storage_.empty() && !saw_quote) {
      // An empty line (maybe just "\r"): already counted in line_, nothing to return.
      if (at_eof) {
        bytes_read_ = buffer_offset_ + pos_;
        return false;
      }
      continue;
    }

    field_ends_.push_back(field_storage_.size());
    // Views only now: field_storage_ may have reallocated while the record grew.
    record.fields.reserve(field_ends_.size());
    const char* data = field_storage_.data();
    std::size_t begin = 0;
    for (const std::size_t end : field_ends_) {
      record.fields.emplace_back(data + begin, end - begin);
      begin = end;
    }
    bytes_read_ = buffer_offset_ + pos_;
    return true;
  }
}

std::vector<std::string> split_csv_line(std::string_view text, char delimiter, char quote) {
  std::vector<std::string> fields;
  // One trailing line end is not part of the last field, as for the file reader.
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.empty()) return fields;

  std::string field;
  std::size_t i = 0;
  const std::size_t n = text.size();
  for (;;) {
    field.clear();
    if (i < n && text[i] == quote) {
      // Same leniency as the reader: an unclosed quote runs to the end, and bytes after the
      // closing quote stay in the field.
      ++i;
      while (i < n) {
        if (text[i] == quote) {
          if (i + 1 < n && text[i + 1] == quote) {
            field.push_back(quote);
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(text[i++]);
      }
    }
    while (i < n && text[i] != delimiter) field.push_back(text[i++]);
    fields.push_back(field);
    if (i >= n) break;
    ++i;  // the delimiter; a trailing one yields a final empty field on the next pass
  }
  return fields;
}

}  // namespace ml::data
