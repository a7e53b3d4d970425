// XXH3-64 through libxxhash's streaming API.
#include "util/checksum.hpp"

#include <xxhash.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <vector>

namespace ml {

void Checksum64::FreeState::operator()(XXH3_state_s* state) const {
  XXH3_freeState(state);
}

Checksum64::Checksum64() : state_(XXH3_createState()) {
  if (!state_ || XXH3_64bits_reset(state_.get()) == XXH_ERROR) throw std::bad_alloc();
}

Checksum64::~Checksum64() = default;

void Checksum64::update(const void* data, std::size_t size) {
  // Only a null state can fail, and the constructor rules that out.
  XXH3_64bits_update(state_.get(), data, size);
}

std::uint64_t Checksum64::value() const {
  return XXH3_64bits_digest(state_.get());
}

std::uint64_t checksum64(const void* data, std::size_t size) {
  return XXH3_64bits(data, size);
}

std::string file_fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be read: " + std::string(std::strerror(errno));
  Checksum64 sum;
  std::vector<char> buffer(1 << 20);
  std::size_t bytes = 0;
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
    sum.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
    bytes += static_cast<std::size_t>(in.gcount());
  }
  return fmt::format("{} bytes, xxh3 {:016x}", bytes, sum.value());
}

}  // namespace ml
