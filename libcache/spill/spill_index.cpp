// SPDX-License-Identifier: Apache-2.0
#include "spill/spill_index.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "spill/spill_store.h"

namespace objcache::spill {

std::uint64_t key_hash(const BlockKey& key) {
  unsigned char buf[20];
  std::memcpy(buf, &key.id_lo, 8);
  std::memcpy(buf + 8, &key.id_hi, 8);
  std::memcpy(buf + 16, &key.page, 4);
  return checksum64(buf, sizeof buf);
}

std::uint64_t SpillIndex::slot_count_for(std::uint64_t capacity) {
  return std::bit_ceil(std::max<std::uint64_t>(capacity / (32u << 10), 1024));
}

void SpillIndex::format(void* map, const Geometry& g, std::uint64_t nonce) {
  auto* h = static_cast<IndexHeader*>(map);
  h->magic = kIndexMagic;
  h->version = kIndexVersion;
  h->block_version = kBlockVersion;
  h->capacity = g.capacity;
  h->page_size = g.page_size;
  h->slot_count = g.slot_count;
  h->block_align = static_cast<std::uint32_t>(kBlockAlign);
  h->max_probe = kMaxProbe;
  h->nonce = nonce;
  h->created_unix = static_cast<std::uint64_t>(std::time(nullptr));
  h->header_checksum = index_header_checksum(*h);
  // relaxed: the file lock of the opener orders this before any other
  // process maps the file.
  h->cursor.store(0, std::memory_order_relaxed);
}

std::string SpillIndex::check(const IndexHeader& h, const Geometry& g, std::uint64_t file_bytes) {
  char buf[160];
  if (h.magic != kIndexMagic) return "not an objcache spill index (bad magic)";
  if (h.version != kIndexVersion || h.block_version != kBlockVersion) {
    std::snprintf(buf, sizeof buf, "format version %u/%u, this build writes %u/%u", h.version,
                  h.block_version, kIndexVersion, kBlockVersion);
    return buf;
  }
  if (h.header_checksum != index_header_checksum(h)) return "index header checksum mismatch";
  if (h.capacity != g.capacity || h.page_size != g.page_size || h.slot_count != g.slot_count ||
      h.block_align != kBlockAlign || h.max_probe != kMaxProbe) {
    std::snprintf(buf, sizeof buf,
                  "geometry changed: capacity %" PRIu64 " page_size %" PRIu64 " slots %" PRIu64
                  ", configured %" PRIu64 "/%" PRIu64 "/%" PRIu64,
                  h.capacity, h.page_size, h.slot_count, g.capacity, g.page_size, g.slot_count);
    return buf;
  }
  if (file_bytes != file_size(g.slot_count)) {
    std::snprintf(buf, sizeof buf, "index file is %" PRIu64 " bytes, expected %" PRIu64,
                  file_bytes, file_size(g.slot_count));
    return buf;
  }
  return {};
}

SpillIndex::SpillIndex(void* map, std::size_t map_len)
    : header_(static_cast<IndexHeader*>(map)),
      slots_(reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(map) +
                                                           kIndexHeaderSize)),
      marks_(slots_ + header_->slot_count),
      mask_(header_->slot_count - 1),
      capacity_(header_->capacity),
      probe_len_(static_cast<std::uint32_t>(std::min<std::uint64_t>(kMaxProbe, header_->slot_count))),
      map_(map),
      map_len_(map_len) {}

SpillIndex::~SpillIndex() { ::munmap(map_, map_len_); }

std::uint64_t SpillIndex::used_bytes() const { return std::min(cursor(), capacity_); }

std::uint64_t SpillIndex::allocate(std::uint64_t alloc_bytes) {
  // seq_cst on the load and the CAS: see IndexHeader::cursor.
  std::uint64_t cur = header_->cursor.load(std::memory_order_seq_cst);
  for (;;) {
    std::uint64_t start = cur;
    const std::uint64_t phys = cur % capacity_;
    if (phys + alloc_bytes > capacity_) start += capacity_ - phys;  // never straddle the end
    if (header_->cursor.compare_exchange_weak(cur, start + alloc_bytes, std::memory_order_seq_cst))
      return start;
  }
}

bool SpillIndex::publish(std::uint64_t hash, std::uint64_t logical, std::uint64_t alloc_bytes,
                         const IndexSlot* replace) {
  const std::uint64_t fresh = entry::make(logical, alloc_bytes, key_tag(hash));
  // release on every publishing CAS: pairs with probe()'s acquire load, so
  // a reader that sees the entry reads the block after our pwrite returned.
  if (replace != nullptr) {
    std::uint64_t expected = replace->entry;
    if (slots_[replace->slot].compare_exchange_strong(expected, fresh, std::memory_order_release,
                                                      std::memory_order_relaxed))
      return true;
  }
  const std::uint64_t home = hash & mask_;
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::uint64_t oldest_slot = home;
    std::uint64_t oldest_entry = 0;
    std::uint64_t oldest_age = 0;
    bool lost_race = false;
    for (std::uint32_t i = 0; i < probe_len_ && !lost_race; ++i) {
      const std::uint64_t slot = (home + i) & mask_;
      // acquire: only to read a consistent cursor age below; nothing else.
      std::uint64_t e = slots_[slot].load(std::memory_order_acquire);
      const std::uint64_t age = entry::is_live(e) ? age_now(e) : 0;  // cursor after e
      const bool free = !entry::is_live(e) || age > capacity_;
      if (free) {
        if (slots_[slot].compare_exchange_strong(e, fresh, std::memory_order_release,
                                                 std::memory_order_relaxed))
          return true;
        lost_race = true;  // someone took it: rescan the window
      } else if (age >= oldest_age) {
        oldest_age = age;
        oldest_slot = slot;
        oldest_entry = e;
      }
    }
    if (lost_race) continue;
    // Every slot holds a fresh block: the oldest is the next the log
    // overwrites anyway.
    if (slots_[oldest_slot].compare_exchange_strong(oldest_entry, fresh, std::memory_order_release,
                                                    std::memory_order_relaxed))
      return true;
  }
  return false;
}

bool SpillIndex::drop(const IndexSlot& s) {
  std::uint64_t expected = s.entry;
  // relaxed: a tombstone publishes nothing; it only makes a block unreachable.
  return slots_[s.slot].compare_exchange_strong(expected, entry::kTombstone,
                                                std::memory_order_relaxed);
}

}  // namespace objcache::spill
