// Where two JSON documents first differ, worded for a one-line message, so that a refusal
// ("these two runs differ", "this file was written for another run") names the key and both
// values instead of dumping a patch.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ml {

// "task.query (10 there, 5 here)": the first difference of RFC 6902's diff from `there` to
// `here`, its JSON pointer written with dots after `prefix`, each side's value dumped ("(absent)"
// where a side lacks the key, long values cut to 60 characters) and named by its label. "" when
// the documents are equal.
std::string first_json_difference(const nlohmann::json& there, const nlohmann::json& here,
                                  const std::string& prefix = "",
                                  const std::string& there_label = "there",
                                  const std::string& here_label = "here");

}  // namespace ml
