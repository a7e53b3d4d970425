// Tests for the synthetic purchase-log generator: reproducibility, file shape, the invariants a
// real log has (carts before purchases, time order) and that the planted signal is learnable.
// Files are read back with a tiny local line splitter, independent of the project CSV reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "synth/synthetic_log.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"

namespace {

namespace fs = std::filesystem;
using ml::synth::SynthOptions;
using ml::synth::SynthSummary;

SynthOptions small_options() {
  SynthOptions o;
  o.users = 300;
  o.categories = 6;
  o.items_per_category = 20;
  o.sessions = 3000;
  o.days = 30;
  return o;
}

// Every category making purchase decisions the same way: the shared part of the model alone.
SynthOptions without_category_part(SynthOptions o) {
  o.task_spread = 0;
  o.audience_strength = 0;
  o.premium_strength = 0;
  return o;
}

// A fresh directory per test, removed afterwards even when the test fails.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              ("metalearn_test_synth_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string sub(const std::string& s) const { return (path_ / s).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// RFC 4180 fields of one line; the generator never puts newlines inside fields.
std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back().push_back(c);
    }
  }
  return fields;
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Table read_table(const std::string& path) {
  std::ifstream in(path);
  Table t;
  std::string line;
  if (std::getline(in, line)) t.header = split_line(line);
  while (std::getline(in, line)) t.rows.push_back(split_line(line));
  return t;
}

struct Log {
  SynthSummary summary;
  Table events, items, users;
};

Log generate(const SynthOptions& o, const std::string& dir) {
  Log log;
  log.summary = ml::synth::write_synthetic_log(o, dir);
  log.events = read_table(log.summary.files.events);
  log.items = read_table(log.summary.files.items);
  log.users = read_table(log.summary.files.users);
  return log;
}

// Column indices, fixed by the file format.
enum { kUser, kItem, kCategory, kEvent, kTime, kPrice, kQuantity, kRating };

TEST(SynthDeterminism, SameSeedGivesByteIdenticalFiles) {
  TempDir dir("same_seed");
  const auto a = ml::synth::write_synthetic_log(small_options(), dir.sub("a"));
  const auto b = ml::synth::write_synthetic_log(small_options(), dir.sub("b"));
  EXPECT_EQ(slurp(a.files.events), slurp(b.files.events));
  EXPECT_EQ(slurp(a.files.items), slurp(b.files.items));
  EXPECT_EQ(slurp(a.files.users), slurp(b.files.users));
  EXPECT_EQ(a.event_rows, b.event_rows);
  EXPECT_EQ(a.purchases, b.purchases);
}

TEST(SynthDeterminism, DifferentSeedGivesDifferentFiles) {
  TempDir dir("different_seed");
  SynthOptions o = small_options();
  const auto a = ml::synth::write_synthetic_log(o, dir.sub("a"));
  o.seed += 1;
  const auto b = ml::synth::write_synthetic_log(o, dir.sub("b"));
  EXPECT_NE(slurp(a.files.events), slurp(b.files.events));
  EXPECT_NE(slurp(a.files.items), slurp(b.files.items));
  EXPECT_NE(slurp(a.files.users), slurp(b.files.users));
}

TEST(SynthFormat, UserVectorsAreNoisyTasteVectorsAndChangeNoOtherFile) {
  TempDir dir("user_vectors");
  SynthOptions o = small_options();
  const auto plain = ml::synth::write_synthetic_log(o, dir.sub("plain"));
  EXPECT_EQ(plain.files.user_vectors, "");
  o.user_vectors = true;
  const auto a = ml::synth::write_synthetic_log(o, dir.sub("a"));
  const auto b = ml::synth::write_synthetic_log(o, dir.sub("b"));
  EXPECT_EQ(slurp(a.files.events), slurp(plain.files.events));
  EXPECT_EQ(slurp(a.files.users), slurp(plain.files.users));
  EXPECT_EQ(slurp(a.files.user_vectors), slurp(b.files.user_vectors));
  const Table vectors = read_table(a.files.user_vectors);
  ASSERT_EQ(vectors.header.size(), static_cast<std::size_t>(o.latent_dim) + 1);
  EXPECT_EQ(vectors.header[1], "v0");
  ASSERT_EQ(vectors.rows.size(), static_cast<std::size_t>(o.users));
  // Loyalty membership is drawn from the taste vector's component 1 (synthetic_log.hpp): the
  // members' mean of v1 is well above the others'.
  const Table users = read_table(a.files.users);
  double sum[2] = {0, 0};
  int n[2] = {0, 0};
  for (std::size_t i = 0; i < users.rows.size(); ++i) {
    ASSERT_EQ(vectors.rows[i][0], users.rows[i][0]);
    const int loyal = users.rows[i].back() == "1" ? 1 : 0;
    sum[loyal] += std::stod(vectors.rows[i][2]);
    ++n[loyal];
  }
  ASSERT_GT(n[0], 0);
  ASSERT_GT(n[1], 0);
  EXPECT_GT(sum[1] / n[1] - sum[0] / n[0], 0.8);
}

TEST(SynthFormat, CountsMatchSummaryAndOptions) {
  TempDir dir("counts");
  const SynthOptions o = small_options();
  const Log log = generate(o, dir.str());
  const SynthSummary& s = log.summary;

  EXPECT_EQ(log.events.header,
            (std::vector<std::string>{"user_id", "item_id", "category", "event", "timestamp",
                                      "price", "quantity", "rating"}));
  EXPECT_EQ(log.items.header, (std::vector<std::string>{"item_id", "category", "brand",
                                                        "price_tier", "base_price", "title"}));
  EXPECT_EQ(log.users.header, (std::vector<std::string>{"user_id", "age_band", "region",
                                                        "signup_days", "loyalty_member"}));

  EXPECT_EQ(static_cast<std::int64_t>(log.events.rows.size()), s.event_rows);
  EXPECT_EQ(static_cast<std::int64_t>(log.items.rows.size()), s.items);
  EXPECT_EQ(static_cast<std::int64_t>(log.users.rows.size()), o.users);
  EXPECT_EQ(s.users, o.users);
  EXPECT_EQ(s.categories, o.categories);
  EXPECT_EQ(s.sessions, o.sessions);
  EXPECT_EQ(s.views + s.carts + s.purchases, s.event_rows);
  // Item counts vary per category around the mean.
  EXPECT_GT(s.items, o.categories * o.items_per_category / 2);
  EXPECT_LT(s.items, o.categories * o.items_per_category * 2);

  std::map<std::string, std::string> item_category;
  std::set<std::string> categories;
  std::map<std::string, std::set<std::string>> brand_categories;
  for (const auto& r : log.items.rows) {
    ASSERT_EQ(r.size(), 6u);
    EXPECT_EQ(r[0].size(), 7u);
    EXPECT_EQ(r[0][0], 'i');
    EXPECT_TRUE(item_category.emplace(r[0], r[1]).second) << "duplicate item " << r[0];
    categories.insert(r[1]);
    brand_categories[r[2]].insert(r[1]);
    EXPECT_TRUE(r[3] == "budget" || r[3] == "standard" || r[3] == "premium") << r[3];
    EXPECT_GT(std::stod(r[4]), 0.0);
  }
  EXPECT_EQ(static_cast<std::int64_t>(categories.size()), o.categories);
  std::size_t widest_brand = 0;
  for (const auto& [brand, cats] : brand_categories)
    widest_brand = std::max(widest_brand, cats.size());
  EXPECT_GE(widest_brand, 2u) << "some brand should span several categories";

  std::set<std::string> user_ids;
  for (const auto& r : log.users.rows) {
    ASSERT_EQ(r.size(), 5u);
    EXPECT_EQ(r[0][0], 'u');
    EXPECT_TRUE(user_ids.insert(r[0]).second);
    EXPECT_TRUE(r[4] == "0" || r[4] == "1");
  }

  std::int64_t purchases = 0;
  for (const auto& r : log.events.rows) {
    ASSERT_EQ(r.size(), 8u);
    EXPECT_TRUE(user_ids.count(r[kUser])) << r[kUser];
    ASSERT_TRUE(item_category.count(r[kItem])) << r[kItem];
    EXPECT_EQ(item_category[r[kItem]], r[kCategory]);
    const int qty = std::stoi(r[kQuantity]);
    EXPECT_GE(qty, 1);
    const auto dot = r[kPrice].find('.');
    ASSERT_NE(dot, std::string::npos);
    EXPECT_EQ(r[kPrice].size() - dot, 3u) << r[kPrice];
    if (r[kEvent] == "purchase") {
      ++purchases;
      if (!r[kRating].empty()) {
        const int rating = std::stoi(r[kRating]);
        EXPECT_GE(rating, 1);
        EXPECT_LE(rating, 5);
      }
    } else {
      EXPECT_TRUE(r[kEvent] == "view" || r[kEvent] == "cart") << r[kEvent];
      EXPECT_EQ(qty, 1);
      EXPECT_TRUE(r[kRating].empty());
    }
  }
  EXPECT_EQ(purchases, s.purchases);
}

TEST(SynthFormat, ExercisesCsvQuotingAndEmptyCells) {
  TempDir dir("quoting");
  const Log log = generate(small_options(), dir.str());
  const std::string raw_items = slurp(log.summary.files.items);
  EXPECT_NE(raw_items.find("\"\""), std::string::npos) << "no title with an embedded quote";
  bool title_with_comma = false, title_with_quote = false;
  for (const auto& r : log.items.rows) {
    title_with_comma |= r[5].find(',') != std::string::npos;
    title_with_quote |= r[5].find('"') != std::string::npos;
  }
  EXPECT_TRUE(title_with_comma);
  EXPECT_TRUE(title_with_quote);
  std::int64_t rated = 0, unrated = 0;
  for (const auto& r : log.events.rows) {
    if (r[kEvent] != "purchase") continue;
    (r[kRating].empty() ? unrated : rated) += 1;
  }
  EXPECT_GT(rated, 0);
  EXPECT_GT(unrated, rated) << "ratings should be on a subset of purchases";
}

TEST(SynthLog, EveryPurchaseFollowsACartForSameUserAndItem) {
  TempDir dir("cart_first");
  const Log log = generate(small_options(), dir.str());
  std::map<std::pair<std::string, std::string>, int> open_carts;
  std::int64_t purchases = 0;
  for (const auto& r : log.events.rows) {
    const auto key = std::make_pair(r[kUser], r[kItem]);
    if (r[kEvent] == "cart") ++open_carts[key];
    if (r[kEvent] == "purchase") {
      ++purchases;
      ASSERT_GT(open_carts[key], 0) << r[kUser] << " bought " << r[kItem] << " without a cart row";
      --open_carts[key];
    }
  }
  EXPECT_GT(purchases, 0);
}

TEST(SynthLog, TimestampsSortedAndInsideTheRange) {
  TempDir dir("time");
  SynthOptions o = small_options();
  o.start_date = "2024-02-20";  // crosses a leap day
  o.days = 14;
  const Log log = generate(o, dir.str());
  ASSERT_FALSE(log.events.rows.empty());
  // ISO timestamps of one fixed width compare correctly as strings.
  const std::string start = "2024-02-20T00:00:00", end = "2024-03-05T00:00:00";
  std::string prev;
  bool saw_leap_day = false;
  for (const auto& r : log.events.rows) {
    const std::string& ts = r[kTime];
    ASSERT_EQ(ts.size(), 19u) << ts;
    EXPECT_EQ(ts[10], 'T');
    EXPECT_GE(ts, start);
    EXPECT_LT(ts, end);
    EXPECT_GE(ts, prev) << "not sorted";
    prev = ts;
    saw_leap_day |= ts.compare(0, 10, "2024-02-29") == 0;
  }
  EXPECT_TRUE(saw_leap_day);
  EXPECT_GE(log.events.rows.front()[kTime].substr(0, 10), "2024-02-20");
  EXPECT_EQ(log.events.rows.back()[kTime].substr(0, 10), "2024-03-04");
}

TEST(SynthLog, PurchaseRateAmongViewsIsPlausible) {
  TempDir dir("rate");
  const Log log = generate(small_options(), dir.str());
  const SynthSummary& s = log.summary;
  ASSERT_GT(s.views, 0);
  const double rate = static_cast<double>(s.purchases) / static_cast<double>(s.views);
  EXPECT_GT(rate, 0.10);
  EXPECT_LT(rate, 0.30);
  EXPECT_GE(s.carts, s.purchases);
  EXPECT_GE(s.views, s.sessions);  // every session views at least one item
}

// The shared part must be visible in observable features: premium items are bought less (price
// sensitivity), loyalty members buy more (their propensity correlates with loyalty). Measured
// with the category part off, which would otherwise let a few categories' premium preference
// dominate the aggregate.
TEST(SynthLog, PurchaseRateDependsOnPriceTierAndLoyalty) {
  TempDir dir("signal");
  SynthOptions o = without_category_part(small_options());
  o.sessions = 8000;
  const Log log = generate(o, dir.str());
  std::map<std::string, std::string> tier, loyal;
  for (const auto& r : log.items.rows) tier[r[0]] = r[3];
  for (const auto& r : log.users.rows) loyal[r[0]] = r[4];
  std::map<std::string, std::pair<double, double>> by_tier, by_loyalty;  // purchases, views
  for (const auto& r : log.events.rows) {
    const bool view = r[kEvent] == "view", buy = r[kEvent] == "purchase";
    if (!view && !buy) continue;
    auto& t = by_tier[tier.at(r[kItem])];
    auto& l = by_loyalty[loyal.at(r[kUser])];
    (buy ? t.first : t.second) += 1;
    (buy ? l.first : l.second) += 1;
  }
  auto rate = [](const std::pair<double, double>& p) { return p.first / std::max(1.0, p.second); };
  const double budget = rate(by_tier["budget"]), premium = rate(by_tier["premium"]);
  const double member = rate(by_loyalty["1"]), other = rate(by_loyalty["0"]);
  EXPECT_GT(budget, premium * 1.3) << "budget " << budget << " premium " << premium;
  EXPECT_GT(member, other * 1.3) << "members " << member << " others " << other;
}

// Per category, the log odds ratio of a purchase (purchases / views) between two groups of
// views: group 1 against group 0, as chosen by `group` (-1 = neither). 0.5 is added to every
// count so that a sparse cell gives a finite value.
std::map<std::string, double> log_odds_ratio_by_category(
    const Log& log, const std::function<int(const std::vector<std::string>&)>& group) {
  std::map<std::string, std::array<double, 4>> counts;  // views 0, buys 0, views 1, buys 1
  for (const auto& r : log.events.rows) {
    const bool view = r[kEvent] == "view", buy = r[kEvent] == "purchase";
    if (!view && !buy) continue;
    const int g = group(r);
    if (g < 0) continue;
    counts[r[kCategory]][2 * g + (buy ? 1 : 0)] += 1;
  }
  std::map<std::string, double> out;
  for (const auto& [category, n] : counts) {
    const double odds0 = (n[1] + 0.5) / (n[0] - n[1] + 0.5);
    const double odds1 = (n[3] + 0.5) / (n[2] - n[3] + 0.5);
    out[category] = std::log(odds1 / odds0);
  }
  return out;
}

double spread(const std::map<std::string, double>& by_category) {
  double sum = 0, sum2 = 0;
  for (const auto& [category, x] : by_category) {
    sum += x;
    sum2 += x * x;
  }
  const auto n = static_cast<double>(by_category.size());
  return std::sqrt(std::max(0.0, (sum2 - sum * sum / n) / (n - 1)));
}

// Thousands of views per category, over many items of uniform popularity, so that a category's
// measured preference is its own and not that of a few popular items' latent vectors.
SynthOptions category_options() {
  SynthOptions o;
  o.users = 1500;
  o.categories = 10;
  o.items_per_category = 100;
  o.zipf_exponent = 0;
  o.sessions = 40000;
  o.days = 60;
  return o;
}

struct CategoryPreferences {
  std::map<std::string, double> premium;  // premium vs budget items
  std::map<std::string, double> older;    // users 45+ vs users under 35
};

// The two preferences of the category part, measured on every view.
CategoryPreferences measure_preferences(const Log& log) {
  std::map<std::string, std::string> tier, age;
  for (const auto& r : log.items.rows) tier[r[0]] = r[3];
  for (const auto& r : log.users.rows) age[r[0]] = r[1];
  CategoryPreferences p;
  p.premium = log_odds_ratio_by_category(log, [&](const std::vector<std::string>& r) {
    const std::string& t = tier.at(r[kItem]);
    return t == "premium" ? 1 : (t == "budget" ? 0 : -1);
  });
  p.older = log_odds_ratio_by_category(log, [&](const std::vector<std::string>& r) {
    const std::string& a = age.at(r[kUser]);
    if (a == "18-24" || a == "25-34") return 0;
    return a == "35-44" ? -1 : 1;
  });
  return p;
}

// The category part makes categories prefer different items and users, measurably, and each
// knob moves its own part: the spread over categories of "premium vs budget" and of "older vs
// younger buyers" is several times what the log shows with the category part off. Off, categories
// still differ a little, through their items' latent vectors under the shared taste (a category
// whose brands suit older users sells more to them); that is the baseline each knob is held to.
TEST(SynthCategories, EachKnobMakesItsPreferenceDifferAcrossCategories) {
  TempDir dir("category_part");
  const SynthOptions on = category_options();
  SynthOptions no_premium = on, no_audience = on;
  no_premium.premium_strength = 0;
  no_audience.audience_strength = 0;
  auto measure = [&](const SynthOptions& o, const std::string& name) {
    return measure_preferences(generate(o, dir.sub(name)));
  };
  const CategoryPreferences with = measure(on, "on");
  const CategoryPreferences off = measure(without_category_part(on), "off");
  const CategoryPreferences premium_off = measure(no_premium, "premium_off");
  const CategoryPreferences audience_off = measure(no_audience, "audience_off");
  ASSERT_EQ(static_cast<std::int64_t>(with.premium.size()), on.categories);
  ASSERT_EQ(static_cast<std::int64_t>(off.older.size()), on.categories);

  const double premium0 = spread(off.premium), older0 = spread(off.older);
  EXPECT_GT(spread(with.premium), 3 * premium0) << spread(with.premium) << " vs " << premium0;
  EXPECT_GT(spread(with.older), 2 * older0) << spread(with.older) << " vs " << older0;
  // premium_strength = 0 brings the premium spread back to the baseline, not the age spread.
  EXPECT_LT(spread(premium_off.premium), 1.5 * premium0) << spread(premium_off.premium);
  EXPECT_GT(spread(premium_off.older), 2 * older0) << spread(premium_off.older);
  // audience_strength = 0 does the same for the age spread.
  EXPECT_LT(spread(audience_off.older), 1.5 * older0) << spread(audience_off.older);
  EXPECT_GT(spread(audience_off.premium), 3 * premium0) << spread(audience_off.premium);
}

TEST(SynthCategories, KnobsChangeOnlyTheirPartAndStayDeterministic) {
  TempDir dir("knobs");
  SynthOptions o = small_options();
  const auto base = ml::synth::write_synthetic_log(o, dir.sub("base"));
  o.premium_strength = 2.0;
  const auto a = ml::synth::write_synthetic_log(o, dir.sub("a"));
  const auto b = ml::synth::write_synthetic_log(o, dir.sub("b"));
  // Compared as booleans: a failure should not print two event logs.
  EXPECT_TRUE(slurp(a.files.events) == slurp(b.files.events));
  EXPECT_TRUE(slurp(a.files.events) != slurp(base.files.events));
  // Items and users do not depend on the purchase decision.
  EXPECT_TRUE(slurp(a.files.items) == slurp(base.files.items));
  EXPECT_TRUE(slurp(a.files.users) == slurp(base.files.users));
}

TEST(SynthFiles, CreatesOutputDirectoryAndLeavesNoTempFiles) {
  TempDir dir("files");
  const std::string out = dir.sub("nested/deeper");
  const SynthSummary s = ml::synth::write_synthetic_log(small_options(), out);
  ASSERT_TRUE(fs::is_directory(out));
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(out)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"events.csv", "items.csv", "users.csv"}));
  EXPECT_EQ(s.files.events, (fs::path(out) / "events.csv").string());
  // A second run over existing files replaces them cleanly.
  ml::synth::write_synthetic_log(small_options(), out);
  names.clear();
  for (const auto& e : fs::directory_iterator(out)) names.insert(e.path().filename().string());
  EXPECT_EQ(names.size(), 3u);
}

TEST(SynthFiles, UnwritableOutputIsAnIoError) {
  TempDir dir("unwritable");
  fs::create_directories(dir.str());
  const std::string blocker = dir.sub("plain_file");
  std::ofstream(blocker) << "x";
  try {
    ml::synth::write_synthetic_log(small_options(), blocker + "/out");
    FAIL() << "expected IoError";
  } catch (const ml::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
  }
}

// A run that fails or is interrupted takes away the folders it created for --out (it used to
// leave them empty), and keeps a folder that was there before.
TEST(SynthFiles, AnInterruptedRunLeavesNoFolderItCreated) {
  TempDir dir("interrupted");
  fs::create_directories(dir.str());
  ml::install_interrupt_handlers();
  struct Restore {
    ~Restore() {
      ml::reset_interrupt_for_testing();
      std::signal(SIGINT, SIG_DFL);
      std::signal(SIGTERM, SIG_DFL);
    }
  } restore;
  std::raise(SIGINT);  // recorded: the first simulated day stops the run
  EXPECT_THROW(ml::synth::write_synthetic_log(small_options(), dir.sub("a/b/out")),
               ml::InterruptedError);
  EXPECT_FALSE(fs::exists(dir.sub("a")));
  fs::create_directories(dir.sub("kept"));
  EXPECT_THROW(ml::synth::write_synthetic_log(small_options(), dir.sub("kept")),
               ml::InterruptedError);
  EXPECT_TRUE(fs::is_directory(dir.sub("kept")));
  EXPECT_TRUE(fs::is_empty(dir.sub("kept")));
}

void expect_usage_error(const SynthOptions& o, const std::string& needle) {
  try {
    ml::synth::validate(o);
    FAIL() << "expected UsageError mentioning " << needle;
  } catch (const ml::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
}

TEST(SynthValidate, RejectsOutOfRangeOptionsNamingTheOption) {
  EXPECT_NO_THROW(ml::synth::validate(SynthOptions{}));
  SynthOptions o;
  o.users = 0;
  expect_usage_error(o, "--users = 0: must be >= 1");
  o = SynthOptions{};
  o.categories = 0;
  expect_usage_error(o, "--categories");
  o = SynthOptions{};
  o.items_per_category = 0;
  expect_usage_error(o, "--items-per-category");
  o = SynthOptions{};
  o.sessions = -5;
  expect_usage_error(o, "--sessions");
  o = SynthOptions{};
  o.days = 0;
  expect_usage_error(o, "--days = 0");
  o = SynthOptions{};
  o.latent_dim = 0;
  expect_usage_error(o, "--latent-dim");
  o = SynthOptions{};
  o.task_spread = -1;
  expect_usage_error(o, "--task-spread");
  o = SynthOptions{};
  o.audience_strength = -0.5;
  expect_usage_error(o, "--audience = -0.5");
  o = SynthOptions{};
  o.premium_strength = 11;
  expect_usage_error(o, "--premium = 11: must be <= 10");
  o = SynthOptions{};
  o.zipf_exponent = std::nan("");
  expect_usage_error(o, "--zipf = nan");
  for (const char* bad : {"2026-13-01", "2026-02-30", "2025-02-29", "26-01-01", "2026/01/01", "",
                          "2026-01-01T00:00:00"}) {
    o = SynthOptions{};
    o.start_date = bad;
    expect_usage_error(o, "--start-date");
  }
  o = SynthOptions{};
  o.start_date = "2024-02-29";
  EXPECT_NO_THROW(ml::synth::validate(o));
}

TEST(SynthValidate, WriteRejectsInvalidOptionsBeforeTouchingDisk) {
  TempDir dir("invalid");
  SynthOptions o = small_options();
  o.users = 0;
  EXPECT_THROW(ml::synth::write_synthetic_log(o, dir.str()), ml::UsageError);
  EXPECT_FALSE(fs::exists(dir.str()));
}

TEST(SynthNames, CategoryNamesAreHumanAndUnique) {
  std::set<std::string> names;
  for (std::int64_t c = 0; c < 200; ++c)
    EXPECT_TRUE(names.insert(ml::synth::category_name(c)).second);
  EXPECT_EQ(ml::synth::category_name(0), "Frozen Pizza");
  EXPECT_NE(ml::synth::category_name(150).find(' '), std::string::npos);
}

}  // namespace
