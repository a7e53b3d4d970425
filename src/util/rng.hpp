// Seeded random numbers that do not depend on call order: every stream is derived from
// (seed, purpose, ids) by hashing, so the episode for task 17 is the same whether or not task
// 16 was sampled first. Same seed, same config, same episodes.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace ml {

// SplitMix64 finaliser: a fast, well-mixed 64-bit hash.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0,
                                    std::uint64_t c = 0) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

// Stable 64-bit FNV-1a hash of bytes: used for hashed feature buckets and purpose tags, so a
// value lands in the same bucket on every machine and every run.
constexpr std::uint64_t hash_bytes(const char* data, std::size_t size,
                                   std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (std::size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// std::mt19937_64 is specified bit-exactly by the standard; the distributions are not, so code
// that must reproduce across standard libraries uses these helpers instead.
using Rng = std::mt19937_64;

inline double uniform01(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

inline std::uint64_t uniform_index(Rng& rng, std::uint64_t n) {
  // Lemire's nearly-divisionless method would be faster; modulo bias is negligible for the
  // sizes used here (n << 2^64).
  return rng() % n;
}

// Standard normal by Box-Muller (portable, unlike std::normal_distribution).
inline double normal01(Rng& rng) {
  double u1 = uniform01(rng);
  double u2 = uniform01(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

template <typename T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_index(rng, i)]);
}

}  // namespace ml
