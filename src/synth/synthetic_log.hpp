// Seeded synthetic purchase logs for `metalearn synth`: realistic enough that meta-learning on
// them is meaningful (categories are related but different tasks), and reproducible: the same
// options give byte-identical files with any standard library (no std::*_distribution; the
// only platform dependence left is libm's exp/log/sin, which glibc computes identically).
//
// Generative model
// ----------------
// Users. Each user i has a latent taste vector u_i ~ N(0, I_d). Observable attributes are
// partly derived from it, so features carry real signal: age_band from u[2] plus noise,
// loyalty_member from u[1] plus noise; region is independent. A per-user purchase propensity
// b_i (from u[1], higher for loyalty members), a price sensitivity s_i > 0 (lognormal; lower
// for loyalty members and older users), a heavy-tailed activity weight (how many sessions the
// user has) and a set of category interests (a few categories, drawn by category popularity:
// each user is active in a subset only).
//
// Brands and items. Brands have a latent vector and a price level; a brand is reused across
// categories by preferential attachment, so a few brands span many categories, like real
// ones. Item j in category c has v_j = 0.6 * v_brand + 0.8 * N(0, I_d); its price tier
// (budget/standard/premium) follows v[0] plus noise, and its base price follows the category's
// reference price, the tier, the brand's price level and noise. Titles mix brand, a
// tier-dependent descriptor and a pack size, so they often contain commas and sometimes quotes.
//
// Categories (tasks). Purchase affinity of user i for item j of category c at a shown price p is
//   logit_ij = bias_c + b_i + u_i^T W_c v_j - s_i * (log p - mu_c) / sd_c      (shared part)
//            + A_c[age_i] + R_c[region_i] + (pi_c + eta_c * age_i') * tier_j  (category part)
// The shared part is the same function in every category: W_c = W_shared + task_spread *
// Delta_c with W_shared = 1.5 / sqrt(d) * I + small noise and Delta_c's entries N(0,
// (0.6/d)^2); b_i and s_i are the user's own propensity and price sensitivity; mu_c, sd_c
// standardise log prices within c; bias_c = -2.9 + task_spread * N(0, 0.5^2). Its latent part
// is observable only through proxies (age band, loyalty, price tier, history aggregates).
// The category part is what a new category's few examples can teach and a global model cannot
// know: each category has its own audience and its own price attitude, on attributes a model
// sees (the users' age band and region, the items' price tier):
//   - audience: A_c[a] = audience_strength * (z1 * lin(a) + z2 * quad(a)) / sqrt(2), a smooth
//     lean towards younger, older or middle-aged buyers (lin, quad: the age band's linear and
//     quadratic contrasts, unit variance over the six bands; z ~ N(0, 1) per category), and
//     R_c[r] ~ N(0, (audience_strength / 2)^2) per region ("local favourites");
//   - premium preference: pi_c ~ N(0, premium_strength^2) logit per tier step (tier_j = -1
//     budget, 0 standard, +1 premium: in some categories shoppers trade up, in others down),
//     with an age slope eta_c ~ N(0, (premium_strength / 2)^2) on age_i' = lin(age band), a
//     user x item interaction that differs by category.
// Averaged over categories the category part is zero, so a model trained across categories
// learns the shared part; a few labelled rows of a new category reveal its A_c, R_c, pi_c and
// eta_c. With task_spread = audience_strength = premium_strength = 0 every category makes
// purchase decisions the same way (only their items, prices and popularity differ).
//
// Popularity. Item popularity within a category is Zipf(zipf_exponent) over a random
// permutation of its items; category popularity is Zipf(0.8) times lognormal noise over a
// random permutation of categories, with a per-category yearly seasonal swing.
//
// Sessions. Sessions are spread over `days` (weekly pattern, slow growth, day-level noise,
// an hour-of-day profile). A session picks a user by activity, a category from the user's
// interests (by interest weight x seasonality), then 1-10 distinct items viewed, drawn by
// popularity x exp(0.6 * u^T W_c v) (the shared taste: the category part acts on the decision,
// not on what is shown). Each viewed item goes to the cart with probability sigmoid(logit + 0.8)
// and a carted item is purchased with probability sigmoid(logit + 0.6) at a checkout after the
// last cart, so every purchase row follows a cart row for the same user and item, and
// purchase/view is around 24% (carts ~36%; 20% and 35% with the category part off) and depends
// on the user-item pair (the low base bias offsets views favouring items the user likes). The shown
// price is the base price with weekly category promotions (10-30% off), loyalty coupons, a regional
// factor and small noise. Purchases have a quantity (more for cheap, consumable categories)
// and ~25% carry a 1-5 rating driven by the preference terms (u^T W_c v and the category part).
//
// Output. Rows are generated session by session in time order and merged through a small
// heap (a session lasts at most two hours), so the events file is sorted by timestamp without
// holding the log in memory. All randomness comes from ml::Rng streams derived from the seed
// and a purpose tag (plus an entity id), never from std::*_distribution.
#pragma once

#include <cstdint>
#include <string>

namespace ml::synth {

// The options' upper bounds (validate() checks them; the CLI states them): they keep the
// in-memory model (latent vectors, CDFs) within a few GB.
inline constexpr std::int64_t kMaxUsers = 10'000'000;
inline constexpr std::int64_t kMaxCategories = 100'000;
inline constexpr std::int64_t kMaxItemsPerCategory = 100'000;
inline constexpr std::int64_t kMaxItems = 10'000'000;  // categories x items-per-category
inline constexpr std::int64_t kMaxSessions = 200'000'000;
inline constexpr int kMaxLatentDim = 64;
inline constexpr int kMaxDays = 36'500;

struct SynthOptions {
  std::int64_t users = 2000;
  std::int64_t categories = 40;
  std::int64_t items_per_category = 60;  // mean; actual counts vary per category
  std::int64_t sessions = 60000;         // browsing sessions; each yields views, maybe more
  std::uint64_t seed = 7;
  int latent_dim = 8;
  double zipf_exponent = 1.05;     // item popularity within a category
  double task_spread = 1.0;        // latent part: W_c's and bias_c's spread (0 = shared W)
  double audience_strength = 1.0;  // sd (logit) of a category's age-band and region offsets
  double premium_strength = 1.5;   // sd (logit per tier step) of a category's premium preference
  std::string start_date = "2026-01-01";  // ISO date of the first event (UTC midnight)
  int days = 180;
  // Also write user_vectors.csv: each user's taste vector u_i plus N(0, 0.5^2) noise per
  // component, as an offline model would estimate it (a table for features.embeddings).
  bool user_vectors = false;
};

struct SynthFiles {
  std::string events, items, users;  // paths written
  std::string user_vectors;          // "" unless SynthOptions::user_vectors (synth --embeddings)
};

struct SynthSummary {
  std::int64_t event_rows = 0;  // data rows in events.csv (views + carts + purchases)
  std::int64_t views = 0;
  std::int64_t carts = 0;
  std::int64_t purchases = 0;
  std::int64_t sessions = 0;
  std::int64_t users = 0;  // rows in users.csv (users without sessions included)
  std::int64_t items = 0;  // rows in items.csv
  std::int64_t categories = 0;
  std::int64_t brands = 0;
  SynthFiles files;
};

// Throws UsageError (the options are synth's command line) naming the option and its expected
// range, e.g. "synth: --users = 0: must be >= 1".
void validate(const SynthOptions& options);

// Writes events.csv, items.csv and users.csv into out_dir (created if missing). Each file is
// written under a temporary name and all three are renamed only once every file is complete,
// so an interrupted or failed run never leaves a half-written file under a final name.
// Throws UsageError for invalid options and IoError when the folder or a file cannot be
// written; a folder it created for a run that fails or is interrupted goes again.
SynthSummary write_synthetic_log(const SynthOptions& options, const std::string& out_dir);

// Category name used for index c (0-based) when `categories` are requested: a realistic
// name, with a numbered suffix (" 2", " 3", ...) once the built-in list is exhausted.
std::string category_name(std::int64_t c);

}  // namespace ml::synth
