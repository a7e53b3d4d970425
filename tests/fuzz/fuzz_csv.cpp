// Fuzz harness for the CSV reader (data/csv_reader.hpp). Besides "no crash, no memory error,
// only DataError", it checks the contract that parallel log parsing (purchase_log.cpp) relies
// on: a file read whole gives the same records, lines and errors as the file read in two parts
// cut at a line start, where the first reader stops at the cut and either the second part
// takes over (the first stopped exactly there) or the first reads on (the cut fell inside a
// quoted field). The reader's buffer is 1 MiB, so an eighth of the inputs are put behind a
// filler line that makes their records cross the buffer's end.
//
// Input: byte 0 picks delimiter, header, quote and padding; byte 1 the cut; the rest is the file.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "data/csv_reader.hpp"
#include "fuzz_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::data::CsvOptions;
using ml::data::CsvPart;
using ml::data::CsvReader;
using ml::data::CsvRecord;

constexpr std::size_t kReaderBuffer = std::size_t{1} << 20;  // CsvReader::kBufferSize

struct Row {
  std::vector<std::string> fields;
  std::size_t line;
  std::string error;
  bool operator==(const Row& o) const {
    return fields == o.fields && line == o.line && error == o.error;
  }
};

void read_rows(CsvReader& reader, std::vector<Row>& rows, std::size_t line_base) {
  CsvRecord r;
  while (reader.next(r)) {
    if (r.fields.empty()) ml::fuzz::property_failed("a record without fields");
    rows.push_back({{r.fields.begin(), r.fields.end()}, r.line + line_base, r.error});
  }
}

std::string describe(const std::vector<Row>& rows) {
  std::string out;
  for (const Row& row : rows) {
    out +=
        "\n  line " + std::to_string(row.line) + (row.error.empty() ? "" : " [" + row.error + "]");
    for (const std::string& f : row.fields) out += " <" + f + ">";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ml::fuzz::Bytes in(data, size);
  const std::uint8_t mode = in.take();
  const std::uint8_t cut_byte = in.take();
  static constexpr char kDelimiters[] = {0, ',', '\t', ';', ' ', 0, 0, 0};
  CsvOptions options;
  options.delimiter = kDelimiters[mode & 7];
  options.header = (mode & 8) != 0;
  options.quote = (mode & 16) != 0 ? '\'' : '"';
  std::string text(in.rest());
  if ((mode & 224) == 224) {  // 1 MiB more to write and read: not for every input
    // The content starts up to 255 bytes before the buffer's end.
    const std::size_t before_end = 1 + (cut_byte % 255);
    text = std::string(kReaderBuffer - before_end - 1, 'x') + "\n" + text;
  }
  const std::string& path = ml::fuzz::ScratchFile::instance().write(text);

  std::vector<Row> whole;
  try {
    CsvReader reader(path, options);
    read_rows(reader, whole, 0);
    if (reader.offset() != text.size())
      ml::fuzz::property_failed("a reader at the end stopped at offset " +
                                std::to_string(reader.offset()) + " of " +
                                std::to_string(text.size()));
  } catch (const ml::DataError&) {
    return 0;  // a malformed header: the same for any cut
  }

  // A cut at a line start inside the content, as purchase_log.cpp's cut points are.
  const std::size_t content_begin = text.size() - in.rest().size();
  std::size_t cut = content_begin + (text.size() - content_begin) * cut_byte / 256;
  while (cut > 0 && cut < text.size() && text[cut - 1] != '\n') ++cut;

  CsvReader first(path, options);
  std::vector<Row> parts;
  first.set_end(cut);
  read_rows(first, parts, 0);
  if (first.offset() == cut) {
    // As purchase_log.cpp opens the parts after the first.
    CsvOptions part_options = options;
    part_options.delimiter = 0;
    part_options.header = false;
    CsvPart part;
    part.begin = cut;
    part.end = std::numeric_limits<std::uint64_t>::max();
    part.delimiter = first.delimiter();
    part.width = first.width();
    part.cr_line_ends = first.cr_line_ends();
    CsvReader second(path, part_options, part);
    read_rows(second, parts, first.line() - 1);
  } else {
    first.set_end(std::numeric_limits<std::uint64_t>::max());
    read_rows(first, parts, 0);
  }
  if (!(parts == whole))
    ml::fuzz::property_failed("reading in parts cut at byte " + std::to_string(cut) +
                              " differs from reading whole\nwhole:" + describe(whole) +
                              "\nparts:" + describe(parts));
  return 0;
}
