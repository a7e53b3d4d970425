// `metalearn embeddings convert`: a table of precomputed vectors (CSV) into the memory-mapped
// binary format that features.embeddings reads (features/embedding_table.hpp).
#include <filesystem>
#include <iostream>

#include "cli/command.hpp"
#include "features/embedding_table.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::cli {

void add_embeddings_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "embeddings", "Work with precomputed embedding tables (features.embeddings)");
  command->require_subcommand(1);
  auto* convert = command->add_subcommand(
      "convert",
      "Write an embedding table (CSV: a key column, then the vector) as a binary .mlemb "
      "file, memory-mapped when a run reads it");
  struct Options {
    std::string input, output, key, delimiter = "auto";
    bool no_header = false;
    int dim = 0;
  };
  auto o = std::make_shared<Options>();
  convert->add_option("-i,--input", o->input, "the table to read: CSV, or a binary table")
      ->required();
  convert->add_option("-o,--output", o->output, "the binary table to write (.mlemb)")->required();
  convert->add_option("--key", o->key,
                      "the id column of a CSV table, by name or 1-based position (default: the "
                      "first column)");
  convert->add_option("--delimiter", o->delimiter,
                      "the CSV delimiter: auto, \",\", tab, \";\", space or \"|\"");
  convert->add_flag("--no-header", o->no_header, "the CSV table has no header line");
  convert
      ->add_option("--dim", o->dim,
                   "the vector width the table must have (default: what its first row has)")
      ->check(whole_number(1, config::kMaxEmbeddingTableDim));
  convert->callback([o] {
    config::EmbeddingTableConfig table;
    table.file = o->input;
    table.dim = o->dim;
    table.csv.header = !o->no_header;
    const auto delimiter = enum_from_name<config::Delimiter>(o->delimiter);
    if (!delimiter)
      throw UsageError("--delimiter '" + o->delimiter +
                       "': " + EnumNames<config::Delimiter>::expected);
    table.csv.delimiter = *delimiter;
    if (!o->key.empty()) {
      if (const auto position = parse_int(o->key); position && *position > 0)
        table.key.position = static_cast<int>(*position);
      else
        table.key.name = o->key;
    }
    const std::int64_t rows = features::convert_embedding_table(table, o->output);
    config::EmbeddingTableConfig written_table;
    written_table.file = o->output;
    const auto written = features::EmbeddingTable::open(written_table);
    std::cout << "wrote " << o->output << ": " << with_thousands(rows) << " rows of dim "
              << written->dim() << ", "
              << with_thousands(static_cast<std::int64_t>(std::filesystem::file_size(o->output)))
              << " bytes\n";
  });
}

}  // namespace ml::cli
