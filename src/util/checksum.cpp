// XXH3-64 through libxxhash's streaming API.
#include "util/checksum.hpp"

#include <xxhash.h>

#include <new>

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

}  // namespace ml
