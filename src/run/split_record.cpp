// The recorded split of a run: see split_record.hpp.
#include "run/split_record.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include "util/errors.hpp"
#include "util/strings.hpp"

namespace ml::run {

namespace {

std::vector<std::string> names_with(const tasks::TaskSet& set, tasks::TaskRole role) {
  std::vector<std::string> names;
  for (const auto& t : set.tasks)
    if (t.role == role) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

nlohmann::json split_record(const tasks::TaskSet& set) {
  return {{"new", names_with(set, tasks::TaskRole::kNew)},
          {"validation", names_with(set, tasks::TaskRole::kValidation)}};
}

void check_split_record(const nlohmann::json& progress, const tasks::TaskSet& set,
                        const std::string& checkpoint) {
  const auto recorded = progress.is_object() ? progress.find(kSplitKey) : progress.end();
  if (!progress.is_object() || recorded == progress.end() || !recorded->is_object()) return;
  // Each held-out task's role then and now; a task in neither list trained (or was dropped).
  std::map<std::string, std::pair<std::string, std::string>> roles;  // name -> (then, now)
  for (const char* role : {"new", "validation"}) {
    const auto list = recorded->find(role);
    if (list == recorded->end() || !list->is_array()) return;  // not a record this reads
    for (const auto& name : *list)
      if (name.is_string()) roles[name.get<std::string>()].first = role;
  }
  for (const auto& t : set.tasks)
    if (t.role == tasks::TaskRole::kNew || t.role == tasks::TaskRole::kValidation)
      roles[t.name].second = tasks::role_name(t.role);
  std::vector<std::string> changed;
  std::size_t count = 0;
  for (const auto& [name, role] : roles) {
    if (role.first == role.second) continue;
    ++count;
    if (changed.size() == 3) continue;
    const auto present = std::find_if(set.tasks.begin(), set.tasks.end(),
                                      [&](const tasks::Task& t) { return t.name == name; });
    const std::string now = !role.second.empty()         ? role.second
                            : present == set.tasks.end() ? "not in the log"
                                                         : tasks::role_name(present->role);
    changed.push_back("'" + name + "' " + (role.first.empty() ? "train" : role.first) + " then, " +
                      now + " now");
  }
  if (count == 0) return;
  throw DataError(
      "the log splits its tasks otherwise than when '" + checkpoint + "' was trained (" +
      std::to_string(count) + " task(s) changed role: " + join(changed, "; ") +
      (count > changed.size() ? "; ..." : "") +
      "): tasks added to or removed from the log reshuffle the split, and scoring training "
      "tasks as new would not be honest; use the log the run was trained on, or train again");
}

}  // namespace ml::run
