// SPDX-License-Identifier: Apache-2.0
// Index: the lock-free map from (object, page) to where the page sits in
// the segment. Sharded open addressing over 64-bit atomic entries; inserts
// and erases by compare-and-swap; a lookup is a few loads, no lock, no
// system call. The index only finds candidates: the caller confirms each
// against the item's own header, so a stale entry is a miss, never data.
#pragma once

#include <atomic>
#include <cstdint>

namespace objcache::index {

// An entry's bit layout (an entry of 0 is empty, 1 is a tombstone):
//   [63]     always 1 in a live entry
//   [62:48]  tag: 15 more bits of the key's hash, to skip most mismatches
//   [47:40]  low 8 bits of the region's generation when inserted
//   [39:20]  region number (up to 2^20 regions)
//   [19:0]   item offset in the region, in 64-byte units (regions <= 64 MiB)
struct Location {
  std::uint32_t region = 0;
  std::uint32_t offset = 0;  // bytes, a multiple of 64
  std::uint8_t gen = 0;
};

inline constexpr std::uint64_t kEmpty = 0;
inline constexpr std::uint64_t kTombstone = 1;
inline constexpr std::uint32_t kMaxRegions = 1u << 20;
inline constexpr std::uint32_t kMaxProbe = 64;

std::uint64_t encode(std::uint64_t hash, const Location& loc);
Location decode(std::uint64_t entry);
inline bool is_live(std::uint64_t e) { return (e >> 63) != 0; }

// The hash of one page of one object: xxh3 of the identity, seeded by page.
std::uint64_t page_hash(std::uint64_t id_lo, std::uint64_t id_hi, std::uint32_t page);

class Index {
 public:
  Index(std::atomic<std::uint64_t>* table, std::uint32_t shards, std::uint32_t shard_entries)
      : table_(table), shards_(shards), shard_entries_(shard_entries) {}

  // Calls accept(entry) for each live entry whose tag matches hash, in probe
  // order, until accept returns true; returns that entry, or kEmpty.
  template <typename F>
  std::uint64_t find(std::uint64_t hash, F&& accept) const {
    std::atomic<std::uint64_t>* shard = shard_of(hash);
    std::uint32_t mask = shard_entries_ - 1;
    std::uint32_t i = static_cast<std::uint32_t>(hash) & mask;
    std::uint64_t tag = tag_of(hash);
    for (std::uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & mask) {
      // acquire: pairs with the release CAS of insert(), so the item the
      // entry points at is seen complete.
      std::uint64_t e = shard[i].load(std::memory_order_acquire);
      if (e == kEmpty) return kEmpty;
      if (is_live(e) && (e & kTagMask) == tag && accept(e)) return e;
    }
    return kEmpty;
  }

  // Inserts entry for hash into the first empty, tombstone or stale slot of
  // its probe window (stale(e) says an entry points at reclaimed space).
  // false when the window is full of live entries: the page is then simply
  // not indexed.
  template <typename F>
  bool insert(std::uint64_t hash, std::uint64_t entry, F&& stale) {
    std::atomic<std::uint64_t>* shard = shard_of(hash);
    std::uint32_t mask = shard_entries_ - 1;
    std::uint32_t i = static_cast<std::uint32_t>(hash) & mask;
    for (std::uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & mask) {
      std::uint64_t e = shard[i].load(std::memory_order_relaxed);
      while (e == kEmpty || e == kTombstone || stale(e)) {
        // release: the item's bytes and header are written before anyone
        // can find this entry.
        if (shard[i].compare_exchange_weak(e, entry, std::memory_order_release,
                                           std::memory_order_relaxed)) {
          return true;
        }
      }
    }
    return false;
  }

  // Replaces entry (if still there) with a tombstone.
  bool erase(std::uint64_t hash, std::uint64_t entry);

  std::uint32_t capacity() const { return shards_ * shard_entries_; }
  // Calls fn(hash-free entry, slot) for every live entry (verify, stats).
  template <typename F>
  void for_each_live(F&& fn) const {
    for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(shards_) * shard_entries_; ++i) {
      std::uint64_t e = table_[i].load(std::memory_order_acquire);
      if (is_live(e)) fn(e, table_[i]);
    }
  }
  // Live entries (a full scan; for stats and tests).
  std::uint64_t count_live() const;

 private:
  static constexpr std::uint64_t kTagMask = 0xffffull << 48;
  static std::uint64_t tag_of(std::uint64_t hash) { return ((hash >> 16) & 0x7fffull) << 48 | (1ull << 63); }
  std::atomic<std::uint64_t>* shard_of(std::uint64_t hash) const {
    return table_ + static_cast<std::uint64_t>((hash >> 40) % shards_) * shard_entries_;
  }
  friend std::uint64_t encode(std::uint64_t, const Location&);

  std::atomic<std::uint64_t>* table_;
  std::uint32_t shards_;
  std::uint32_t shard_entries_;
};

}  // namespace objcache::index
