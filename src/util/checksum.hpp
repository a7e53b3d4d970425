// Checksums of the files the tool writes (checkpoints, the parsed-log cache): XXH3-64 from
// Debian's libxxhash, fed part by part. They detect truncation and corruption, not tampering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct XXH3_state_s;  // xxhash.h's streaming state, kept out of this header

namespace ml {

// XXH3-64 (seed 0) of everything passed to update(), in order: how the bytes are split across
// calls does not change the value, so a writer and a reader may feed different pieces.
class Checksum64 {
 public:
  Checksum64();
  ~Checksum64();
  Checksum64(const Checksum64&) = delete;
  Checksum64& operator=(const Checksum64&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // The checksum of the bytes so far; update() may go on after it.
  std::uint64_t value() const;

 private:
  struct FreeState {
    void operator()(XXH3_state_s* state) const;
  };
  std::unique_ptr<XXH3_state_s, FreeState> state_;
};

// XXH3-64 of one buffer.
std::uint64_t checksum64(const void* data, std::size_t size);

// A file by content, for telling whether two hosts hold the same bytes: "<size> bytes, xxh3
// <16 hex digits>", or "cannot be read: <the system's reason>" (no exception: the caller
// compares the texts).
std::string file_fingerprint(const std::string& path);

}  // namespace ml
