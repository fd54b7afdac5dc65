// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the Content-Range of a ranged GET. What parses is a
// range inside its object (first <= last < total) and prints back to the
// same text; anything else is refused, never data.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "store/s3_xml.h"

using namespace objcache::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  auto r = s3xml::parse_content_range(s);
  if (!r) return 0;
  if (r->first > r->last || r->last >= r->total) std::abort();
  // It prints back to the same text, unless a number was spelled with
  // leading zeros (the one spelling from_chars takes that to_string does not make).
  const std::string again = "bytes " + std::to_string(r->first) + "-" + std::to_string(r->last) + "/" +
                            std::to_string(r->total);
  bool leading_zero = false;
  for (std::size_t i = 1; i + 1 < s.size(); ++i)
    if (s[i] == '0' && (s[i - 1] == ' ' || s[i - 1] == '-' || s[i - 1] == '/') && s[i + 1] >= '0' && s[i + 1] <= '9')
      leading_zero = true;
  if (again != s && !leading_zero) std::abort();
  auto back = s3xml::parse_content_range(again);
  if (!back || back->first != r->first || back->last != r->last || back->total != r->total) std::abort();
  return 0;
}
