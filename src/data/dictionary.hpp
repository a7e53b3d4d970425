// Interns strings (user ids, item ids, category names, categorical values) into dense int32
// ids so that the log is held as integer columns, one copy of each distinct string. Interning
// runs several times per parsed row, so the index is an open-addressing table with linear
// probing: no node allocation per entry, one cache line per lookup for short values, and
// copies and moves of a Dictionary stay valid (nothing points into it).
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ml::data {

// A fast, well-mixed 64-bit hash of a byte string (8 bytes per step, multiply-xorshift
// finalisation). Not for anything that must be stable across versions on disk.
inline std::uint64_t hash_bytes(std::string_view s) {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * kMul);
  const char* p = s.data();
  std::size_t n = s.size();
  auto mix = [](std::uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
  };
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ mix(w)) * kMul;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ mix(w ^ (std::uint64_t{n} << 56))) * kMul;
  }
  return mix(h);
}

class Dictionary {
 public:
  std::int32_t intern(std::string_view value) {
    if ((names_.size() + 1) * 2 > slots_.size()) grow();
    const Probe probe(value);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = probe.start & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id < 0) {
        slot = {probe.word, probe.tag, static_cast<std::int32_t>(names_.size())};
        names_.emplace_back(value);
        return slot.id;
      }
      if (matches(slot, probe, value)) return slot.id;
    }
  }
  std::optional<std::int32_t> find(std::string_view value) const {
    if (slots_.empty()) return std::nullopt;
    const Probe probe(value);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = probe.start & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return std::nullopt;
      if (matches(slot, probe, value)) return slot.id;
    }
  }
  // Valid until the next intern() (the names live in a vector that may grow).
  const std::string& name(std::int32_t id) const { return names_[static_cast<std::size_t>(id)]; }
  std::size_t size() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }

 private:
  // Ids and other short values (up to 8 bytes) are compared inside the slot, so a lookup
  // touches one cache line; longer values are compared against the stored name.
  struct Slot {
    std::uint64_t word = 0;  // the value's bytes, zero-padded, when it is at most 8 bytes long
    std::uint32_t tag = 0;   // high hash bits, with min(length, 15) in the low four
    std::int32_t id = -1;    // -1: empty
  };
  struct Probe {
    explicit Probe(std::string_view value) {
      const std::uint64_t h = hash_bytes(value);
      start = static_cast<std::size_t>(h);
      tag = (static_cast<std::uint32_t>(h >> 32) & ~0xFu) |
            static_cast<std::uint32_t>(value.size() < 15 ? value.size() : 15);
      if (value.size() <= 8) std::memcpy(&word, value.data(), value.size());
    }
    std::size_t start;
    std::uint32_t tag;
    std::uint64_t word = 0;
  };
  bool matches(const Slot& slot, const Probe& probe, std::string_view value) const {
    if (slot.tag != probe.tag) return false;
    // Equal tags mean equal lengths up to 15, so for short values the words decide.
    if (value.size() <= 8) return slot.word == probe.word;
    return names_[static_cast<std::size_t>(slot.id)] == value;
  }

  // Keeps the load factor at or below one half, so probe runs stay short.
  void grow() {
    std::vector<Slot> bigger(slots_.empty() ? 16 : slots_.size() * 2);
    const std::size_t mask = bigger.size() - 1;
    for (std::size_t id = 0; id < names_.size(); ++id) {
      const Probe probe(names_[id]);
      std::size_t i = probe.start & mask;
      while (bigger[i].id >= 0) i = (i + 1) & mask;
      bigger[i] = {probe.word, probe.tag, static_cast<std::int32_t>(id)};
    }
    slots_.swap(bigger);
  }

  std::vector<std::string> names_;
  std::vector<Slot> slots_;
};

}  // namespace ml::data
