// Base64 (RFC 4648, standard alphabet, padded): binary blobs inside JSON, such as a tokenizer
// model in a purchase-log run's saved feature statistics.
#pragma once

#include <string>
#include <string_view>

namespace ml {

std::string base64_encode(std::string_view bytes);
// DataError when `text` is not padded standard base64.
std::string base64_decode(std::string_view text);

}  // namespace ml
