// docs/CONFIG.md, generated from the config's field tables: every key with its JSON path, type,
// default, allowed values and docstring, grouped by section. `metalearn config-docs` prints it;
// a test fails when the checked-in file differs.
#pragma once

#include <string>

namespace ml::config {

// The whole Markdown document.
std::string config_reference_markdown();

}  // namespace ml::config
