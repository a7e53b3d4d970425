// Synthetic purchase-log generator; the generative model is documented in synthetic_log.hpp.
// Determinism matters more than speed here: every random draw comes from an ml::Rng stream
// keyed by (seed, purpose, entity), so changing one part of the model or one option does not
// reshuffle unrelated parts, and no std::*_distribution is used anywhere.
#include "synth/synthetic_log.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

#include "util/atomic_file.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/rng.hpp"
#include "util/time_parse.hpp"

namespace ml::synth {
namespace {

namespace fs = std::filesystem;

std::uint64_t tag(std::string_view s) {
  return hash_bytes(s.data(), s.size());
}

// --- Static vocabulary -------------------------------------------------------------------

struct CategorySpec {
  const char* name;
  double ref_price;   // typical price of a standard-tier, middle-size item
  const char* sizes;  // three pack sizes, '|'-separated, smallest first
  double bulk;        // mean extra units per purchase (consumables are bought several at once)
};

// Some names and sizes contain commas on purpose: real exports do, and the data should make
// every consumer handle RFC 4180 quoting.
constexpr CategorySpec kCategories[] = {
    {"Frozen Pizza", 4.49, "350g|400g|2 x 320g", 0.35},
    {"Coffee Beans", 9.99, "250g|500g|1kg", 0.25},
    {"Dog Food", 18.99, "2kg|6kg|12kg", 0.15},
    {"Cat Food", 6.49, "12 x 85g|24 x 85g|1.5kg", 0.4},
    {"Breakfast Cereal", 3.79, "375g|500g|750g", 0.4},
    {"Pasta", 1.59, "500g|1kg|3 x 500g", 0.9},
    {"Olive Oil", 7.99, "500ml|750ml|1l", 0.2},
    {"Chocolate", 2.29, "100g|200g|4 x 45g", 0.8},
    {"Potato Chips", 2.49, "150g|200g|6 x 25g", 0.7},
    {"Nuts, Seeds & Dried Fruit", 4.99, "200g|400g|1kg", 0.3},
    {"Green Tea", 3.49, "20 bags|50 bags|100 bags", 0.3},
    {"Cheese", 3.99, "200g|400g|750g", 0.5},
    {"Yogurt", 1.29, "150g|500g|4 x 125g", 1.0},
    {"Milk", 1.19, "1l|2l|6 x 1l", 1.0},
    {"Butter", 2.59, "250g|500g|2 x 250g", 0.4},
    {"Eggs", 2.99, "6 pack|10 pack|12 pack", 0.3},
    {"Bread", 2.19, "400g|800g|6 rolls", 0.5},
    {"Ice Cream", 4.29, "500ml|900ml|6 x 100ml", 0.3},
    {"Sparkling Water", 0.89, "1l|6 x 500ml|12 x 330ml", 1.2},
    {"Orange Juice", 2.49, "1l|1.5l|6 x 200ml", 0.6},
    {"Craft Beer", 2.29, "330ml|4 x 330ml|12 x 330ml", 1.2},
    {"Red Wine", 9.49, "750ml|1.5l|3 x 750ml", 0.4},
    {"Baby Food", 1.49, "120g|200g|4 x 90g", 1.2},
    {"Diapers", 12.99, "Size 3, 44 pcs|Size 4, 40 pcs|Size 5, 36 pcs", 0.3},
    {"Shampoo", 4.49, "250ml|400ml|2 x 400ml", 0.2},
    {"Toothpaste", 2.79, "75ml|100ml|3 x 75ml", 0.4},
    {"Laundry Detergent", 9.99, "1.5l|2.5l|40 washes", 0.15},
    {"Dishwasher Tablets", 8.49, "30 pcs|60 pcs|100 pcs", 0.1},
    {"Toilet Paper", 5.99, "9 rolls|18 rolls|24 rolls", 0.2},
    {"Kitchen Towels", 3.49, "2 rolls|4 rolls|8 rolls", 0.3},
    {"Vitamins", 8.99, "60 caps|90 caps|120 caps", 0.1},
    {"Protein Powder", 24.99, "500g|1kg|2.5kg", 0.1},
    {"Energy Bars", 1.49, "50g|5 x 40g|12 x 40g", 1.0},
    {"Hot Sauce", 3.99, "150ml|250ml|3 x 150ml", 0.2},
    {"Spices", 2.49, "40g|100g|250g", 0.5},
    {"Canned Soup", 1.89, "400g|800g|4 x 400g", 0.9},
    {"Canned Tomatoes", 0.99, "400g|4 x 400g|2.5kg", 1.0},
    {"Honey", 5.49, "250g|500g|1kg", 0.15},
    {"Peanut Butter", 3.29, "340g|500g|1kg", 0.2},
    {"Frozen Vegetables", 2.29, "500g|1kg|2.5kg", 0.5},
    {"Ready Meals", 4.99, "350g|450g|2 x 400g", 0.6},
    {"Oat Milk", 2.19, "250ml|1l|6 x 1l", 0.8},
    {"Tofu", 2.49, "200g|400g|2 x 280g", 0.4},
    {"Granola", 4.29, "400g|750g|1kg", 0.3},
    {"Rice", 2.99, "1kg|2kg|5kg", 0.3},
    {"Flour", 1.49, "1kg|1.5kg|2.5kg", 0.4},
    {"Pet Treats", 3.99, "100g|250g|500g", 0.5},
    {"Cat Litter", 9.99, "5l|10l|20l", 0.1},
    {"Face Cream", 14.99, "30ml|50ml|100ml", 0.05},
    {"Deodorant", 3.49, "50ml|150ml|2 x 150ml", 0.3},
    {"Razors", 9.99, "4 pack|8 pack|12 pack", 0.1},
    {"Sunscreen", 11.99, "100ml|200ml|400ml", 0.1},
    {"Hand Soap", 2.29, "250ml|500ml|1l refill", 0.4},
    {"Batteries", 6.99, "AA, 4 pack|AAA, 8 pack|AA, 12 pack", 0.2},
    {"Light Bulbs", 5.99, "E27, 1 pack|E27, 3 pack|GU10, 4 pack", 0.3},
    {"Scented Candles", 12.99, "100g|200g|3 x 200g", 0.2},
    {"Bin Bags", 3.99, "20 pcs|50 pcs|100 pcs", 0.2},
    {"Cleaning Spray", 2.99, "500ml|750ml|2 x 750ml", 0.3},
    {"Ground Coffee", 5.49, "250g|500g|1kg", 0.3},
    {"Tea & Infusions", 3.29, "20 bags|40 bags|80 bags", 0.3},
    {"Sparkling Wine", 12.99, "200ml|750ml|6 x 750ml", 0.3},
    {"Smoked Salmon", 6.99, "100g|200g|300g", 0.2},
    {"Fresh Berries", 3.49, "125g|250g|500g", 0.5},
};
constexpr std::int64_t kNumCategorySpecs = sizeof(kCategories) / sizeof(kCategories[0]);

constexpr const char* kBrandPrefixes[] = {
    "Green",  "Golden", "North",   "Sunny",    "Blue",      "Happy",   "Old",     "Little",
    "Wild",   "Pure",   "Silver",  "Red",      "Maple",     "Oak",     "River",   "Stone",
    "Bright", "Fresh",  "Royal",   "Urban",    "Alpine",    "Coastal", "Harvest", "Meadow",
    "Willow", "Cedar",  "Prairie", "Nature's", "Grandma's", "Baker's"};
constexpr const char* kBrandSuffixes[] = {"Valley",  "Farm",     "Fields", "Kitchen", "& Co.",
                                          "Mill",    "Bay",      "Ridge",  "Garden",  "Pantry",
                                          "Bros.",   "Naturals", "Select", "Home",    "Market",
                                          "Orchard", "Creek",    "Table",  "Works",   "Labs"};
constexpr std::size_t kNumPrefixes = sizeof(kBrandPrefixes) / sizeof(kBrandPrefixes[0]);
constexpr std::size_t kNumSuffixes = sizeof(kBrandSuffixes) / sizeof(kBrandSuffixes[0]);

constexpr const char* kTierNames[] = {"budget", "standard", "premium"};
constexpr double kTierPriceFactor[] = {0.7, 1.0, 1.55};
constexpr double kSizePriceFactor[] = {0.75, 1.0, 1.7};
const std::vector<std::vector<const char*>> kDescriptors = {
    {"Value", "Basics", "Everyday", "Saver", "Essentials"},
    {"Classic", "Original", "Family", "Light", "Mild", "Signature", "Fresh"},
    {"Deluxe", "Gourmet", "Artisan", "Reserve", "Organic", "Finest"}};

constexpr const char* kAgeBands[] = {"18-24", "25-34", "35-44", "45-54", "55-64", "65+"};
// Cut points on a unit-variance score: a skew towards 25-44, as in most shops' customer bases.
constexpr double kAgeCuts[] = {-1.2, -0.35, 0.3, 0.85, 1.4};
constexpr const char* kRegions[] = {"North", "South", "East", "West", "Central", "Islands"};
constexpr double kRegionWeights[] = {0.22, 0.24, 0.18, 0.2, 0.12, 0.04};
constexpr double kRegionPriceFactor[] = {1.0, 0.98, 1.02, 1.03, 1.0, 1.08};

// Relative session volume by hour of day (UTC): quiet nights, lunch and evening peaks.
constexpr double kHourProfile[24] = {0.5, 0.3, 0.2, 0.15, 0.15, 0.25, 0.6, 1.0, 1.3, 1.4, 1.5, 1.6,
                                     1.8, 1.7, 1.5, 1.4,  1.5,  1.7,  2.0, 2.3, 2.4, 2.1, 1.5, 0.9};
// Monday first; weekends busier.
constexpr double kWeekdayFactor[7] = {0.95, 0.92, 0.95, 1.0, 1.08, 1.2, 1.15};

// Upper bound on the span of one session (see simulate_session); the heap merge relies on
// sessions never being longer, and the last day's sessions start early enough to end in range.
constexpr std::int64_t kMaxViews = 10;
constexpr std::int64_t kMaxViewGap = 8 + 600;
constexpr std::int64_t kMaxCartDelay = 3 + 120;
constexpr std::int64_t kMaxCheckoutDelay = 20 + 600;
constexpr std::int64_t kMaxSessionSeconds =
    (kMaxViews - 1) * kMaxViewGap + kMaxCartDelay + kMaxCheckoutDelay;
static_assert(kMaxSessionSeconds < 86400 / 4, "sessions must fit well inside a day");

// Carts at ~35% and purchases at ~20% of views with the category part off (~36% and ~24% with
// the default options); the base bias is low because views already favour items the user likes.
constexpr double kBaseBias = -2.9;
constexpr double kCartOffset = 0.8;
constexpr double kBuyOffset = 0.6;

// --- Small numeric helpers -----------------------------------------------------------------

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// Exponential with the given mean, capped; 1 - u keeps the log argument in (0, 1].
double exponential(Rng& rng, double mean, double cap) {
  return std::min(cap, -std::log(1.0 - uniform01(rng)) * mean);
}

// Uniform double from a hash, for values looked up by key rather than drawn in sequence.
double hash_uniform(std::uint64_t h) {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// Index i with cdf[i-1] <= x < cdf[i]; cdf is cumulative and its last entry the total.
std::size_t pick_cdf(const std::vector<double>& cdf, Rng& rng) {
  double x = uniform01(rng) * cdf.back();
  auto it = std::upper_bound(cdf.begin(), cdf.end(), x);
  if (it == cdf.end()) --it;
  return static_cast<std::size_t>(it - cdf.begin());
}

// --- Dates ---------------------------------------------------------------------------------

// Strict YYYY-MM-DD; years 1900-9999 keep every timestamp four digits wide, hence sortable.
bool parse_date(const std::string& s, std::int64_t& days) {
  const std::optional<std::int64_t> parsed = parse_iso_date(s);
  if (!parsed || civil_from_days(*parsed).year < 1900) return false;
  days = *parsed;
  return true;
}

// --- Text output -----------------------------------------------------------------------------

void append_uint(std::string& out, std::uint64_t v, int width = 0) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(tmp[--n]);
}

void append_id(std::string& out, char prefix, std::int64_t id) {
  out.push_back(prefix);
  append_uint(out, static_cast<std::uint64_t>(id), 6);
}

void append_cents(std::string& out, std::int64_t cents) {
  append_uint(out, static_cast<std::uint64_t>(cents / 100));
  out.push_back('.');
  append_uint(out, static_cast<std::uint64_t>(cents % 100), 2);
}

// RFC 4180: quote only when needed, doubling embedded quotes.
void append_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

// One output file: rows are appended to buffer() and handed to the atomic file in large
// blocks. Closing and renaming are separate steps so that all outputs can be completed before
// any of them becomes visible.
class PendingFile {
 public:
  explicit PendingFile(const std::string& final_path) : file_(final_path) {
    buffer_.reserve(kFlushBytes + 4096);
  }

  std::string& buffer() { return buffer_; }
  void maybe_flush() {
    if (buffer_.size() >= kFlushBytes) flush();
  }
  void close() {
    flush();
    file_.finish();
  }
  void rename() { file_.publish(); }
  const std::string& path() const { return file_.path(); }

 private:
  static constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

  void flush() {
    file_.write(buffer_);
    buffer_.clear();
  }

  AtomicFile file_;
  std::string buffer_;
};

// --- The model ---------------------------------------------------------------------------------

constexpr std::size_t kNumAgeBands = sizeof(kAgeBands) / sizeof(kAgeBands[0]);
constexpr std::size_t kNumRegions = sizeof(kRegions) / sizeof(kRegions[0]);

// Linear and quadratic contrasts of the age band, each with mean 0 and variance 1 over the six
// bands, so that a category's age profile is a smooth "younger", "older" or "middle-aged" lean.
double age_linear(std::size_t band) {
  return (static_cast<double>(band) - 2.5) / std::sqrt(35.0 / 12.0);
}
double age_quadratic(std::size_t band) {
  const double x = static_cast<double>(band) - 2.5;
  return (x * x - 35.0 / 12.0) / std::sqrt(224.0 / 36.0);
}

struct Category {
  std::string name;
  std::string csv_name;  // already quoted for CSV when needed
  const CategorySpec* spec = nullptr;
  double bias = 0, log_mu = 0, log_sd = 1;
  // The category-specific part of the purchase decision on observable attributes: logit
  // offsets by the user's age band and region (its audience), and the logit per price-tier step
  // (its premium preference) with its slope in the user's age.
  std::array<double, kNumAgeBands> age_pref{};
  std::array<double, kNumRegions> region_pref{};
  double premium = 0, premium_by_age = 0;
  double popularity = 1, season_amp = 0, season_phase = 0;
  std::int64_t first_item = 0, num_items = 0;  // items [first_item, first_item + num_items)
  std::vector<std::int32_t> brands;
};

struct Brand {
  std::vector<double> latent;
  double price_level = 1;
};

struct Model {
  int d = 8;
  std::vector<Category> categories;
  std::vector<Brand> brands;
  // Items, in category order; item_id[j] is the 1-based public id (a permutation).
  std::vector<std::int32_t> item_category, item_brand, item_id;
  std::vector<std::uint8_t> item_tier, item_size;
  std::vector<std::int64_t> item_base_cents;
  std::vector<double> item_popularity;  // Zipf weight within the category
  std::vector<float> item_wv;           // W_c v_j, d per item: taste is a dot product with u
  // Users.
  std::vector<float> user_latent;  // d per user
  std::vector<double> user_bias, user_price_sens, activity_cdf;
  std::vector<std::uint8_t> user_age, user_region, user_loyal;
  std::vector<std::int32_t> user_signup_days;
  std::vector<std::int64_t> interest_begin;  // users + 1 offsets into interest_*
  std::vector<std::int32_t> interest_category;
  std::vector<double> interest_weight;
};

void build_categories(const SynthOptions& o, std::uint64_t seed, Model& m) {
  const auto nc = static_cast<std::size_t>(o.categories);
  m.categories.resize(nc);
  Rng rng(derive_seed(seed, tag("category-popularity")));
  std::vector<std::size_t> rank(nc);
  for (std::size_t c = 0; c < nc; ++c) rank[c] = c;
  shuffle(rank, rng);
  for (std::size_t c = 0; c < nc; ++c) {
    Category& cat = m.categories[c];
    cat.name = category_name(static_cast<std::int64_t>(c));
    append_field(cat.csv_name, cat.name);
    cat.spec = &kCategories[c % kNumCategorySpecs];
    Rng crng(derive_seed(seed, tag("category"), c));
    cat.bias = kBaseBias + o.task_spread * 0.5 * normal01(crng);
    cat.popularity =
        std::pow(static_cast<double>(rank[c] + 1), -0.8) * std::exp(0.3 * normal01(crng));
    cat.season_amp = 0.4 * uniform01(crng);
    cat.season_phase = 6.283185307179586 * uniform01(crng);

    // A stream of its own, so the knobs below leave every other draw of the log unchanged.
    Rng prng(derive_seed(seed, tag("category-preferences"), c));
    const double lean = normal01(prng), middle = normal01(prng);
    for (std::size_t a = 0; a < kNumAgeBands; ++a)
      cat.age_pref[a] =
          o.audience_strength * (lean * age_linear(a) + middle * age_quadratic(a)) / std::sqrt(2.0);
    for (double& r : cat.region_pref) r = 0.5 * o.audience_strength * normal01(prng);
    cat.premium = o.premium_strength * normal01(prng);
    cat.premium_by_age = 0.5 * o.premium_strength * normal01(prng);
  }
}

// W_shared is mostly diagonal so that latent dimensions read as "likes premium", "likes
// organic", ...; the small off-diagonal part keeps it from being trivially separable.
std::vector<double> shared_matrix(int d, std::uint64_t seed) {
  Rng rng(derive_seed(seed, tag("w-shared")));
  std::vector<double> w(static_cast<std::size_t>(d) * d);
  for (int a = 0; a < d; ++a)
    for (int b = 0; b < d; ++b)
      w[a * d + b] =
          (a == b ? 1.5 / std::sqrt(static_cast<double>(d)) : 0.0) + 0.3 / d * normal01(rng);
  return w;
}

void build_items(const SynthOptions& o, std::uint64_t seed, Model& m) {
  const int d = m.d;
  const std::vector<double> w_shared = shared_matrix(d, seed);
  std::vector<std::int32_t> brand_slots;  // one entry per (brand, category): attachment weights
  std::vector<double> wc(w_shared.size()), v(d);
  std::int64_t next_item = 0;
  for (std::size_t c = 0; c < m.categories.size(); ++c) {
    Category& cat = m.categories[c];
    Rng rng(derive_seed(seed, tag("items"), c));
    const double scale = std::exp(0.4 * normal01(rng) - 0.08);
    cat.num_items =
        std::max<std::int64_t>(1, std::llround(static_cast<double>(o.items_per_category) * scale));
    cat.first_item = next_item;
    next_item += cat.num_items;

    for (std::size_t k = 0; k < wc.size(); ++k)
      wc[k] = w_shared[k] + o.task_spread * 0.6 / d * normal01(rng);

    // Brands: reuse an existing one (proportionally to how many categories it already spans)
    // or found a new one; a few brands end up spanning many categories.
    const std::int64_t want_brands = std::min<std::int64_t>(
        cat.num_items, std::clamp<std::int64_t>(2 + cat.num_items / 10, 2, 30));
    while (static_cast<std::int64_t>(cat.brands.size()) < want_brands) {
      std::int32_t b = -1;
      if (!brand_slots.empty() && uniform01(rng) < 0.45) {
        for (int attempt = 0; attempt < 3 && b < 0; ++attempt) {
          const std::int32_t cand = brand_slots[uniform_index(rng, brand_slots.size())];
          if (std::find(cat.brands.begin(), cat.brands.end(), cand) == cat.brands.end()) b = cand;
        }
      }
      if (b < 0) {
        Brand nb;
        nb.latent.resize(d);
        for (double& x : nb.latent) x = normal01(rng);
        nb.price_level = std::exp(0.15 * normal01(rng));
        b = static_cast<std::int32_t>(m.brands.size());
        m.brands.push_back(std::move(nb));
      }
      cat.brands.push_back(b);
      brand_slots.push_back(b);
    }
    std::vector<double> brand_cdf(cat.brands.size());
    double acc = 0;
    for (std::size_t k = 0; k < brand_cdf.size(); ++k)
      brand_cdf[k] = acc += 1.0 / static_cast<double>(k + 1);

    // Zipf popularity over a random permutation of the category's items.
    const auto n = static_cast<std::size_t>(cat.num_items);
    std::vector<std::size_t> rank(n);
    for (std::size_t k = 0; k < n; ++k) rank[k] = k;
    shuffle(rank, rng);

    double sum_log = 0, sum_log2 = 0;
    for (std::size_t k = 0; k < n; ++k) {
      // The first items take each listed brand once, so every brand of the category is used.
      const std::int32_t brand =
          k < cat.brands.size() ? cat.brands[k] : cat.brands[pick_cdf(brand_cdf, rng)];
      const Brand& br = m.brands[static_cast<std::size_t>(brand)];
      for (int a = 0; a < d; ++a) v[a] = 0.6 * br.latent[a] + 0.8 * normal01(rng);
      const double tier_score = 0.8 * v[0] + 0.6 * normal01(rng);
      const std::uint8_t tier = tier_score < -0.45 ? 0 : (tier_score > 0.45 ? 2 : 1);
      const auto size = static_cast<std::uint8_t>(uniform_index(rng, 3));
      double price = cat.spec->ref_price * kTierPriceFactor[tier] * kSizePriceFactor[size] *
                     br.price_level * std::exp(0.12 * normal01(rng));
      // Shelf-style prices: x.99 above 10, x.x9 below.
      std::int64_t cents =
          price >= 10 ? std::llround(price) * 100 - 1 : std::llround(price * 10) * 10 - 1;
      cents = std::max<std::int64_t>(cents, 49);
      const double lp = std::log(static_cast<double>(cents) / 100.0);
      sum_log += lp;
      sum_log2 += lp * lp;

      m.item_category.push_back(static_cast<std::int32_t>(c));
      m.item_brand.push_back(brand);
      m.item_tier.push_back(tier);
      m.item_size.push_back(size);
      m.item_base_cents.push_back(cents);
      m.item_popularity.push_back(std::pow(static_cast<double>(rank[k] + 1), -o.zipf_exponent));
      for (int a = 0; a < d; ++a) {
        double s = 0;
        for (int b = 0; b < d; ++b) s += wc[a * d + b] * v[b];
        m.item_wv.push_back(static_cast<float>(s));
      }
    }
    cat.log_mu = sum_log / static_cast<double>(n);
    const double var = sum_log2 / static_cast<double>(n) - cat.log_mu * cat.log_mu;
    cat.log_sd = std::max(0.15, std::sqrt(std::max(0.0, var)));
  }

  // Public ids are shuffled so that an id reveals nothing about the category.
  m.item_id.resize(static_cast<std::size_t>(next_item));
  for (std::size_t j = 0; j < m.item_id.size(); ++j)
    m.item_id[j] = static_cast<std::int32_t>(j + 1);
  Rng id_rng(derive_seed(seed, tag("item-ids")));
  shuffle(m.item_id, id_rng);
}

void build_users(const SynthOptions& o, std::uint64_t seed, Model& m) {
  const int d = m.d;
  const auto nu = static_cast<std::size_t>(o.users);
  const auto nc = static_cast<std::int64_t>(m.categories.size());
  std::vector<double> cat_cdf(m.categories.size());
  double acc = 0;
  for (std::size_t c = 0; c < cat_cdf.size(); ++c) cat_cdf[c] = acc += m.categories[c].popularity;
  std::vector<double> region_cdf;
  acc = 0;
  for (double w : kRegionWeights) region_cdf.push_back(acc += w);

  m.user_latent.resize(nu * d);
  m.user_bias.resize(nu);
  m.user_price_sens.resize(nu);
  m.activity_cdf.resize(nu);
  m.user_age.resize(nu);
  m.user_region.resize(nu);
  m.user_loyal.resize(nu);
  m.user_signup_days.resize(nu);
  m.interest_begin.assign(nu + 1, 0);
  const int k_loyal = 1 % d, k_age = 2 % d;
  double activity_total = 0;
  std::vector<std::int32_t> chosen;
  for (std::size_t i = 0; i < nu; ++i) {
    Rng rng(derive_seed(seed, tag("user"), i));
    float* u = &m.user_latent[i * d];
    for (int a = 0; a < d; ++a) u[a] = static_cast<float>(normal01(rng));

    const double age_score = 0.8 * u[k_age] + 0.6 * normal01(rng);
    std::uint8_t age = 0;
    while (age < 5 && age_score > kAgeCuts[age]) ++age;
    const bool loyal = 0.8 * u[k_loyal] + 0.6 * normal01(rng) > 0.4;
    m.user_age[i] = age;
    m.user_loyal[i] = loyal ? 1 : 0;
    m.user_region[i] = static_cast<std::uint8_t>(pick_cdf(region_cdf, rng));
    m.user_bias[i] = 0.4 * u[k_loyal] + 0.3 * normal01(rng) + (loyal ? 0.4 : 0.0);
    m.user_price_sens[i] = 0.8 * std::exp(0.35 * normal01(rng)) * (loyal ? 0.8 : 1.0) *
                           (age == 0 ? 1.25 : (age >= 4 ? 0.85 : 1.0));
    m.user_signup_days[i] = static_cast<std::int32_t>(
        std::min(3650.0, std::floor(std::exp(5.3 + 0.9 * normal01(rng) + (loyal ? 0.6 : 0.0)))));
    activity_total += std::exp(0.9 * normal01(rng) + (loyal ? 0.3 : 0.0));
    m.activity_cdf[i] = activity_total;

    // A few distinct categories, drawn by category popularity.
    std::int64_t want = 2;
    while (want < 15 && uniform01(rng) < 0.7) ++want;
    want = std::min(want, nc);
    chosen.clear();
    for (int attempt = 0; attempt < 40 * want && static_cast<std::int64_t>(chosen.size()) < want;
         ++attempt) {
      const auto c = static_cast<std::int32_t>(pick_cdf(cat_cdf, rng));
      if (std::find(chosen.begin(), chosen.end(), c) == chosen.end()) chosen.push_back(c);
    }
    for (std::int32_t c : chosen) {
      m.interest_category.push_back(c);
      m.interest_weight.push_back(std::exp(0.8 * normal01(rng)));
    }
    m.interest_begin[i + 1] = static_cast<std::int64_t>(m.interest_category.size());
  }
}

// --- Sessions and events ---------------------------------------------------------------------

enum EventKind : std::uint8_t { kView = 0, kCart = 1, kPurchase = 2 };
constexpr const char* kEventNames[] = {"view", "cart", "purchase"};

struct Event {
  std::int64_t t;      // seconds since start_date 00:00:00 UTC
  std::uint64_t seq;   // generation order: breaks timestamp ties so output is deterministic
  std::int32_t user;   // 0-based
  std::int32_t item;   // model index, not the public id
  std::int32_t cents;  // unit price shown/paid
  std::uint8_t kind, quantity, rating;  // rating 0 = none
};
struct EventLater {
  bool operator()(const Event& a, const Event& b) const {
    return a.t != b.t ? a.t > b.t : a.seq > b.seq;
  }
};

class EventWriter {
 public:
  EventWriter(const Model& m, PendingFile& file, std::int64_t start_day, int days)
      : m_(m), file_(file) {
    dates_.reserve(static_cast<std::size_t>(days) + 1);
    for (int k = 0; k <= days; ++k) {
      const CivilDate date = civil_from_days(start_day + k);
      std::string s;
      append_uint(s, static_cast<std::uint64_t>(date.year), 4);
      s.push_back('-');
      append_uint(s, date.month, 2);
      s.push_back('-');
      append_uint(s, date.day, 2);
      s.push_back('T');
      dates_.push_back(std::move(s));
    }
  }

  void write(const Event& e) {
    std::string& out = file_.buffer();
    const auto item = static_cast<std::size_t>(e.item);
    append_id(out, 'u', e.user + 1);
    out.push_back(',');
    append_id(out, 'i', m_.item_id[item]);
    out.push_back(',');
    out.append(m_.categories[static_cast<std::size_t>(m_.item_category[item])].csv_name);
    out.push_back(',');
    out.append(kEventNames[e.kind]);
    out.push_back(',');
    const std::int64_t sec = e.t % 86400;
    out.append(dates_[static_cast<std::size_t>(e.t / 86400)]);
    append_uint(out, static_cast<std::uint64_t>(sec / 3600), 2);
    out.push_back(':');
    append_uint(out, static_cast<std::uint64_t>(sec / 60 % 60), 2);
    out.push_back(':');
    append_uint(out, static_cast<std::uint64_t>(sec % 60), 2);
    out.push_back(',');
    append_cents(out, e.cents);
    out.push_back(',');
    append_uint(out, e.quantity);
    out.push_back(',');
    if (e.rating != 0) append_uint(out, e.rating);
    out.push_back('\n');
    file_.maybe_flush();
  }

 private:
  const Model& m_;
  PendingFile& file_;
  std::vector<std::string> dates_;  // "YYYY-MM-DDT" per day offset
};

class SessionSimulator {
 public:
  SessionSimulator(std::uint64_t seed, const Model& m, std::int64_t start_day)
      : seed_(seed), m_(m), start_day_(start_day) {}

  // Appends the session's events (in generation order) to `out`.
  void simulate(std::int64_t start, Rng& rng, std::vector<Event>& out) {
    const int d = m_.d;
    const auto user = static_cast<std::size_t>(pick_cdf(m_.activity_cdf, rng));
    const float* u = &m_.user_latent[user * d];
    const std::int64_t day = start / 86400;

    // Category: interest weight times the category's seasonal swing on this calendar day.
    const auto ib = static_cast<std::size_t>(m_.interest_begin[user]);
    const auto ie = static_cast<std::size_t>(m_.interest_begin[user + 1]);
    cdf_.clear();
    double acc = 0;
    const double year_angle = 6.283185307179586 * static_cast<double>(start_day_ + day) / 365.2425;
    for (std::size_t k = ib; k < ie; ++k) {
      const Category& c = m_.categories[static_cast<std::size_t>(m_.interest_category[k])];
      acc += m_.interest_weight[k] * (1.0 + c.season_amp * std::sin(year_angle + c.season_phase));
      cdf_.push_back(acc);
    }
    const auto cat_index = static_cast<std::size_t>(m_.interest_category[ib + pick_cdf(cdf_, rng)]);
    const Category& cat = m_.categories[cat_index];

    // Taste for every item of the category; views favour popular items the user likes.
    const auto first = static_cast<std::size_t>(cat.first_item);
    const auto n = static_cast<std::size_t>(cat.num_items);
    taste_.resize(n);
    weight_.resize(n);
    double total = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const float* wv = &m_.item_wv[(first + k) * d];
      double s = 0;
      for (int a = 0; a < d; ++a) s += static_cast<double>(u[a]) * wv[a];
      taste_[k] = s;
      weight_[k] = m_.item_popularity[first + k] * std::exp(0.6 * std::clamp(s, -20.0, 20.0));
      total += weight_[k];
    }
    std::int64_t views = 1;
    while (views < kMaxViews && uniform01(rng) < 0.62) ++views;
    views = std::min<std::int64_t>(views, cat.num_items);

    // Session-wide price factors: weekly category promotion, regional level, loyalty coupon.
    const std::int64_t week = day / 7;
    const std::uint64_t ph =
        derive_seed(seed_, tag_promo_, cat_index, static_cast<std::uint64_t>(week));
    double session_factor = 1.0;
    if (hash_uniform(ph) < 0.12) session_factor *= 1.0 - (0.10 + 0.20 * hash_uniform(mix64(ph)));
    session_factor *= kRegionPriceFactor[m_.user_region[user]];
    if (m_.user_loyal[user] != 0 && uniform01(rng) < 0.08)
      session_factor *= 0.85 + 0.1 * uniform01(rng);

    // The category-specific part: the user's side is fixed for the session, the item's side is
    // its tier (-1 budget, 0 standard, +1 premium) times the user's premium preference here.
    const std::size_t age = m_.user_age[user];
    const double audience = cat.age_pref[age] + cat.region_pref[m_.user_region[user]];
    const double premium = cat.premium + cat.premium_by_age * age_linear(age);

    carted_.clear();
    std::int64_t t = start, last = start;
    for (std::int64_t v = 0; v < views; ++v) {
      if (v > 0) t += 8 + static_cast<std::int64_t>(exponential(rng, 45.0, 600.0));
      last = std::max(last, t);
      // Weighted draw without replacement (views are few, so a linear scan is fine).
      double x = uniform01(rng) * total;
      std::size_t k = 0;
      while (k + 1 < n && (weight_[k] == 0.0 || x >= weight_[k])) {
        x -= weight_[k];
        ++k;
      }
      while (weight_[k] == 0.0) --k;  // rounding ran past the end: take the last live item
      total -= weight_[k];
      weight_[k] = 0.0;

      const std::size_t item = first + k;
      const double price = static_cast<double>(m_.item_base_cents[item]) * session_factor *
                           (1.0 + 0.01 * normal01(rng));
      const auto cents = static_cast<std::int32_t>(std::max<std::int64_t>(1, std::llround(price)));
      const double price_z = (std::log(cents / 100.0) - cat.log_mu) / cat.log_sd;
      const double preference =
          taste_[k] + audience + premium * (static_cast<double>(m_.item_tier[item]) - 1.0);
      const double logit =
          cat.bias + m_.user_bias[user] + preference - m_.user_price_sens[user] * price_z;
      out.push_back(make(t, user, item, cents, kView, 1, 0));
      if (uniform01(rng) < sigmoid(logit + kCartOffset)) {
        const std::int64_t tc = t + 3 + static_cast<std::int64_t>(exponential(rng, 20.0, 120.0));
        last = std::max(last, tc);
        out.push_back(make(tc, user, item, cents, kCart, 1, 0));
        carted_.push_back({item, cents, logit, preference, price_z});
      }
    }
    if (carted_.empty()) return;

    const std::int64_t checkout =
        last + 20 + static_cast<std::int64_t>(exponential(rng, 60.0, 600.0));
    const double rating_p = m_.user_loyal[user] != 0 ? 0.32 : 0.22;
    for (const Carted& c : carted_) {
      if (uniform01(rng) >= sigmoid(c.logit + kBuyOffset)) continue;  // abandoned in the cart
      const double extra = cat.spec->bulk * std::exp(-0.4 * c.price_z);
      const double more = extra / (1.0 + extra);
      std::uint8_t q = 1;
      while (q < 24 && uniform01(rng) < more) ++q;
      std::uint8_t rating = 0;
      if (uniform01(rng) < rating_p) {
        const double r = std::round(2.4 + 0.6 * c.preference + 0.9 * normal01(rng));
        rating = static_cast<std::uint8_t>(std::clamp(r, 1.0, 5.0));
      }
      out.push_back(make(checkout, user, c.item, c.cents, kPurchase, q, rating));
    }
  }

 private:
  struct Carted {
    std::size_t item;
    std::int32_t cents;
    double logit, preference, price_z;  // preference: shared taste + category-specific part
  };

  Event make(std::int64_t t, std::size_t user, std::size_t item, std::int32_t cents,
             std::uint8_t kind, std::uint8_t qty, std::uint8_t rating) {
    return Event{
        t,   seq_++, static_cast<std::int32_t>(user), static_cast<std::int32_t>(item), cents, kind,
        qty, rating};
  }

  std::uint64_t seed_;
  const Model& m_;
  std::int64_t start_day_;
  std::uint64_t tag_promo_ = tag("promo");
  std::uint64_t seq_ = 0;
  std::vector<double> cdf_, taste_, weight_;
  std::vector<Carted> carted_;
};

// Sessions per day: weekly pattern, slow growth, noise and occasional sale days; rounded by
// cumulative sums so the total is exactly `sessions`.
std::vector<std::int64_t> sessions_per_day(const SynthOptions& o, std::uint64_t seed,
                                           std::int64_t start_day) {
  Rng rng(derive_seed(seed, tag("days")));
  std::vector<double> w(static_cast<std::size_t>(o.days));
  double total = 0;
  for (std::size_t k = 0; k < w.size(); ++k) {
    // 1970-01-01 was a Thursday; index 0 is Monday.
    const auto weekday =
        static_cast<std::size_t>(((start_day + static_cast<std::int64_t>(k)) % 7 + 7 + 3) % 7);
    double x = kWeekdayFactor[weekday] * (1.0 + 0.2 * static_cast<double>(k) / o.days) *
               std::exp(0.08 * normal01(rng));
    if (uniform01(rng) < 0.03) x *= 1.6;
    w[k] = x;
    total += x;
  }
  std::vector<std::int64_t> counts(w.size());
  double cum = 0;
  std::int64_t assigned = 0;
  for (std::size_t k = 0; k < w.size(); ++k) {
    cum += w[k];
    const std::int64_t upto = k + 1 == w.size()
                                  ? o.sessions
                                  : std::llround(static_cast<double>(o.sessions) * cum / total);
    counts[k] = std::max<std::int64_t>(0, upto - assigned);
    assigned += counts[k];
  }
  return counts;
}

[[noreturn]] void bad_option(const std::string& name, const std::string& value,
                             const std::string& expected) {
  throw UsageError("synth: --" + name + " = " + value + ": " + expected);
}

template <typename T>
void check_range(const std::string& name, T value, T lo, T hi) {
  std::ostringstream v;
  v << value;
  if (!(value >= lo)) {  // written so NaN fails too
    std::ostringstream e;
    e << "must be >= " << lo;
    bad_option(name, v.str(), e.str());
  }
  if (!(value <= hi)) {
    std::ostringstream e;
    e << "must be <= " << hi;
    bad_option(name, v.str(), e.str());
  }
}

}  // namespace

std::string category_name(std::int64_t c) {
  std::string name = kCategories[c % kNumCategorySpecs].name;
  if (c >= kNumCategorySpecs) name += " " + std::to_string(c / kNumCategorySpecs + 1);
  return name;
}

void validate(const SynthOptions& o) {
  check_range<std::int64_t>("users", o.users, 1, kMaxUsers);
  check_range<std::int64_t>("categories", o.categories, 1, kMaxCategories);
  check_range<std::int64_t>("items-per-category", o.items_per_category, 1, kMaxItemsPerCategory);
  if (o.categories * o.items_per_category > kMaxItems)
    bad_option("items-per-category", std::to_string(o.items_per_category),
               "categories x items-per-category must be <= " + std::to_string(kMaxItems) +
                   " (categories = " + std::to_string(o.categories) + ")");
  check_range<std::int64_t>("sessions", o.sessions, 1, kMaxSessions);
  check_range<int>("latent-dim", o.latent_dim, 1, kMaxLatentDim);
  check_range<double>("zipf", o.zipf_exponent, 0.0, 5.0);
  check_range<double>("task-spread", o.task_spread, 0.0, 10.0);
  check_range<double>("audience", o.audience_strength, 0.0, 10.0);
  check_range<double>("premium", o.premium_strength, 0.0, 10.0);
  std::int64_t start_day = 0;
  if (!parse_date(o.start_date, start_day))
    bad_option("start-date", "'" + o.start_date + "'",
               "must be a date YYYY-MM-DD between 1900-01-01 and 9999-12-31");
  check_range<int>("days", o.days, 1, kMaxDays);
  if (civil_from_days(start_day + o.days).year > 9999)
    bad_option("days", std::to_string(o.days),
               "start-date + days must end before year 10000 (start-date = " + o.start_date + ")");
}

SynthSummary write_synthetic_log(const SynthOptions& options, const std::string& out_dir) {
  validate(options);
  const SynthOptions& o = options;
  std::int64_t start_day = 0;
  parse_date(o.start_date, start_day);
  const std::uint64_t seed = derive_seed(o.seed, tag("metalearn-synth"));

  Model m;
  m.d = o.latent_dim;
  build_categories(o, seed, m);
  build_items(o, seed, m);
  build_users(o, seed, m);

  // Folders this call creates go again if it fails or is interrupted (after the temporaries,
  // which the writers below remove first).
  NewFolders created(out_dir);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir))
    throw IoError("cannot create folder '" + out_dir +
                  "': " + (ec ? ec.message() : std::string("it exists and is not a folder")));
  const fs::path dir(out_dir);
  PendingFile events((dir / "events.csv").string());
  PendingFile items((dir / "items.csv").string());
  PendingFile users((dir / "users.csv").string());
  std::optional<PendingFile> user_vectors;
  if (o.user_vectors) user_vectors.emplace((dir / "user_vectors.csv").string());

  SynthSummary summary;
  summary.users = o.users;
  summary.items = static_cast<std::int64_t>(m.item_id.size());
  summary.categories = o.categories;
  summary.brands = static_cast<std::int64_t>(m.brands.size());

  // items.csv in public-id order.
  {
    std::vector<std::int32_t> by_id(m.item_id.size());
    for (std::size_t j = 0; j < m.item_id.size(); ++j)
      by_id[static_cast<std::size_t>(m.item_id[j] - 1)] = static_cast<std::int32_t>(j);
    std::vector<std::string> brand_names(m.brands.size());
    {
      std::vector<std::size_t> combos(kNumPrefixes * kNumSuffixes);
      for (std::size_t k = 0; k < combos.size(); ++k) combos[k] = k;
      Rng rng(derive_seed(seed, tag("brand-names")));
      shuffle(combos, rng);
      for (std::size_t b = 0; b < brand_names.size(); ++b) {
        const std::size_t k = combos[b % combos.size()];
        brand_names[b] =
            std::string(kBrandPrefixes[k / kNumSuffixes]) + " " + kBrandSuffixes[k % kNumSuffixes];
        if (b >= combos.size()) brand_names[b] += " " + std::to_string(b / combos.size() + 1);
      }
    }
    std::string& out = items.buffer();
    out += "item_id,category,brand,price_tier,base_price,title\n";
    std::string title;
    const std::uint64_t title_tag = tag("title");
    for (std::int32_t j32 : by_id) {
      const auto j = static_cast<std::size_t>(j32);
      const Category& cat = m.categories[static_cast<std::size_t>(m.item_category[j])];
      const std::string& brand = brand_names[static_cast<std::size_t>(m.item_brand[j])];
      const std::uint8_t tier = m.item_tier[j];
      // Title words come from a hash of the item, not a stream, so they need no state.
      const std::uint64_t h = derive_seed(seed, title_tag, j);
      const auto& words = kDescriptors[tier];
      std::string_view sizes = cat.spec->sizes;
      for (int s = 0; s < m.item_size[j]; ++s) sizes.remove_prefix(sizes.find('|') + 1);
      const std::string_view size = sizes.substr(0, sizes.find('|'));
      title.assign(brand);
      title.push_back(' ');
      const bool quoted = (h >> 8) % 100 < 15;  // marketing quotes: `"Deluxe"`
      if (quoted) title.push_back('"');
      title.append(words[h % words.size()]);
      if (quoted) title.push_back('"');
      title.push_back(' ');
      title.append(cat.name);
      title.append(", ");
      title.append(size);

      append_id(out, 'i', m.item_id[j]);
      out.push_back(',');
      out.append(cat.csv_name);
      out.push_back(',');
      append_field(out, brand);
      out.push_back(',');
      out.append(kTierNames[tier]);
      out.push_back(',');
      append_cents(out, m.item_base_cents[j]);
      out.push_back(',');
      append_field(out, title);
      out.push_back('\n');
      items.maybe_flush();
    }
  }

  {
    std::string& out = users.buffer();
    out += "user_id,age_band,region,signup_days,loyalty_member\n";
    for (std::size_t i = 0; i < static_cast<std::size_t>(o.users); ++i) {
      append_id(out, 'u', static_cast<std::int64_t>(i) + 1);
      out.push_back(',');
      out.append(kAgeBands[m.user_age[i]]);
      out.push_back(',');
      out.append(kRegions[m.user_region[i]]);
      out.push_back(',');
      append_uint(out, static_cast<std::uint64_t>(m.user_signup_days[i]));
      out.push_back(',');
      out.push_back(m.user_loyal[i] != 0 ? '1' : '0');
      out.push_back('\n');
      users.maybe_flush();
    }
  }

  if (user_vectors) {
    std::string& out = user_vectors->buffer();
    out += "user_id";
    for (int a = 0; a < m.d; ++a) out += ",v" + std::to_string(a);
    out += "\n";
    char number[32];
    for (std::size_t i = 0; i < static_cast<std::size_t>(o.users); ++i) {
      Rng rng(derive_seed(seed, tag("user-vectors"), i));
      append_id(out, 'u', static_cast<std::int64_t>(i) + 1);
      for (int a = 0; a < m.d; ++a) {
        const double v =
            m.user_latent[i * static_cast<std::size_t>(m.d) + static_cast<std::size_t>(a)] +
            0.5 * normal01(rng);
        std::snprintf(number, sizeof number, ",%.4f", v);
        out += number;
      }
      out.push_back('\n');
      user_vectors->maybe_flush();
    }
  }

  // events.csv: sessions start in time order and last at most kMaxSessionSeconds, so an event
  // can be written as soon as the next session starts after it; the heap holds only the events
  // of the sessions still open.
  {
    events.buffer() += "user_id,item_id,category,event,timestamp,price,quantity,rating\n";
    EventWriter writer(m, events, start_day, o.days);
    SessionSimulator sim(seed, m, start_day);
    std::priority_queue<Event, std::vector<Event>, EventLater> pending;
    std::vector<Event> session_events;
    std::vector<double> hour_cdf;
    double acc = 0;
    for (double w : kHourProfile) hour_cdf.push_back(acc += w);
    const std::vector<std::int64_t> per_day = sessions_per_day(o, seed, start_day);
    std::vector<std::int32_t> starts;
    auto emit = [&](const Event& e) {
      writer.write(e);
      ++summary.event_rows;
      if (e.kind == kView) ++summary.views;
      if (e.kind == kCart) ++summary.carts;
      if (e.kind == kPurchase) ++summary.purchases;
    };
    for (std::int64_t day = 0; day < o.days; ++day) {
      // A day at a time (util/interrupt.hpp); the temporaries go with the writers.
      throw_if_interrupted("generating the synthetic log");
      Rng rng(derive_seed(seed, tag("sessions"), static_cast<std::uint64_t>(day)));
      const bool last_day = day + 1 == o.days;
      starts.resize(static_cast<std::size_t>(per_day[static_cast<std::size_t>(day)]));
      for (std::int32_t& s : starts) {
        const auto hour = static_cast<std::int64_t>(pick_cdf(hour_cdf, rng));
        std::int64_t sec = hour * 3600 + static_cast<std::int64_t>(uniform_index(rng, 3600));
        if (last_day) sec = sec * (86400 - kMaxSessionSeconds) / 86400;  // end inside the range
        s = static_cast<std::int32_t>(sec);
      }
      std::sort(starts.begin(), starts.end());
      for (std::int32_t s : starts) {
        const std::int64_t t0 = day * 86400 + s;
        while (!pending.empty() && pending.top().t <= t0) {
          emit(pending.top());
          pending.pop();
        }
        session_events.clear();
        sim.simulate(t0, rng, session_events);
        for (const Event& e : session_events) pending.push(e);
        ++summary.sessions;
      }
    }
    while (!pending.empty()) {
      emit(pending.top());
      pending.pop();
    }
  }

  events.close();
  items.close();
  users.close();
  if (user_vectors) user_vectors->close();
  events.rename();
  items.rename();
  users.rename();
  if (user_vectors) user_vectors->rename();
  created.keep();
  summary.files = SynthFiles{events.path(), items.path(), users.path(),
                             user_vectors ? user_vectors->path() : std::string()};
  return summary;
}

}  // namespace ml::synth
