// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the metadata codec, fed damaged or foreign bytes as a
// shared segment could hold them. A blob either fails to decode or decodes
// to entries that encode and decode again to the same entries; stat and
// listing records likewise. Never a crash, an over-read or a huge
// allocation.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "meta/meta_codec.h"

using namespace objcache;

namespace {

bool same(const DirEntry& a, const DirEntry& b) {
  return a.name == b.name && a.kind == b.kind && a.size == b.size && a.mtime == b.mtime && a.etag == b.etag &&
         a.ino == b.ino;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (auto l = meta::decode_listing(in)) {
    const auto blob = meta::encode_listing(*l);
    auto again = meta::decode_listing(blob);
    if (!again || again->size() != l->size()) std::abort();
    for (std::size_t i = 0; i < l->size(); ++i)
      if (!same((*l)[i], (*again)[i])) std::abort();
  }
  if (auto s = meta::decode_stat_record(in)) {
    std::array<std::byte, meta::kStatRecordSize> out{};
    if (!meta::encode_stat_record(*s, out)) std::abort();
    auto again = meta::decode_stat_record(out);
    if (!again || again->kind != s->kind || again->size != s->size || again->mtime != s->mtime ||
        again->etag != s->etag || again->made_ms != s->made_ms)
      std::abort();
  }
  if (auto r = meta::decode_listing_record(in)) {
    std::array<std::byte, meta::kListingRecordSize> out{};
    meta::encode_listing_record(*r, out);
    auto again = meta::decode_listing_record(out);
    if (!again || again->length != r->length || again->nonce != r->nonce || again->made_ms != r->made_ms)
      std::abort();
  }
  return 0;
}
