// SPDX-License-Identifier: Apache-2.0
#include "index/index.h"

#include <xxhash.h>

namespace objcache::index {

std::uint64_t encode(std::uint64_t hash, const Location& loc) {
  std::uint64_t tag = ((hash >> 16) & 0x7fffull) << 48 | (1ull << 63);
  return tag | (static_cast<std::uint64_t>(loc.gen) << 40) |
         (static_cast<std::uint64_t>(loc.region & 0xfffff) << 20) | ((loc.offset / 64) & 0xfffff);
}

Location decode(std::uint64_t e) {
  Location l;
  l.gen = static_cast<std::uint8_t>(e >> 40);
  l.region = static_cast<std::uint32_t>((e >> 20) & 0xfffff);
  l.offset = static_cast<std::uint32_t>(e & 0xfffff) * 64;
  return l;
}

std::uint64_t page_hash(std::uint64_t id_lo, std::uint64_t id_hi, std::uint32_t page) {
  std::uint64_t id[2] = {id_lo, id_hi};
  return XXH3_64bits_withSeed(id, sizeof id, page);
}

bool Index::erase(std::uint64_t hash, std::uint64_t entry) {
  std::atomic<std::uint64_t>* shard = shard_of(hash);
  std::uint32_t mask = shard_entries_ - 1;
  std::uint32_t i = static_cast<std::uint32_t>(hash) & mask;
  for (std::uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & mask) {
    std::uint64_t e = shard[i].load(std::memory_order_relaxed);
    if (e == kEmpty) return false;
    if (e == entry) {
      // relaxed: a tombstone publishes nothing; readers of the old entry
      // still confirm against the item header.
      return shard[i].compare_exchange_strong(e, kTombstone, std::memory_order_relaxed);
    }
  }
  return false;
}

std::uint64_t Index::count_live() const {
  std::uint64_t n = 0;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(shards_) * shard_entries_; ++i) {
    if (is_live(table_[i].load(std::memory_order_relaxed))) ++n;
  }
  return n;
}

}  // namespace objcache::index
