// SPDX-License-Identifier: Apache-2.0
// RegionTable: the data area as regions that items are appended to. Owns
// reservation (a fetch_add on the current region's fill mark), sealing,
// reader and writer pins, and reclaiming a region for reuse (handing its
// items to the spill tier first). Items are packed on 64-byte boundaries,
// so a 110 KiB object occupies 110 KiB plus at most 127 bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "ram/eviction_policy.h"
#include "ram/prefault.h"
#include "objcache/result.h"
#include "shm/segment.h"
#include "stats/stats.h"

namespace objcache::ram {

struct Reservation {
  std::uint32_t region = shm::kNoRegion;
  std::uint32_t offset = 0;  // of the ItemHeader, in bytes
  std::uint32_t gen = 0;
  std::uint32_t length = 0;  // data bytes
  shm::ItemHeader* header = nullptr;
  std::span<std::byte> data;
};

// Called for every complete item of a region about to be reused.
using ReclaimSink = std::function<void(const shm::ItemHeader&, std::span<const std::byte>)>;

class RegionTable {
 public:
  RegionTable(shm::Segment& seg, stats::Stats& stats, EvictionPolicy& policy);

  std::uint32_t count() const { return seg_.geometry().region_count; }
  std::uint64_t region_size() const { return seg_.geometry().region_size; }
  shm::RegionDesc& desc(std::uint32_t r) const { return seg_.regions()[r]; }
  shm::ItemHeader* item(std::uint32_t r, std::uint32_t offset) const {
    return reinterpret_cast<shm::ItemHeader*>(seg_.region_data(r) + offset);
  }

  // Pins r for reading if it is at generation gen8 (low 8 bits) and open
  // or sealed. While pinned it cannot be reclaimed.
  bool pin(std::uint32_t r, std::uint8_t gen8);
  void unpin(std::uint32_t r);
  // Marks r recently used for CLOCK (a relaxed store, only when unset).
  void touch(std::uint32_t r) {
    auto& ref = desc(r).referenced;
    if (ref.load(std::memory_order_relaxed) == 0) ref.store(1, std::memory_order_relaxed);
  }

  // Room for an item of length data bytes, pinned until release().
  // NoSpace when the cache is full and nothing may be reclaimed; with
  // may_evict false, when a new region would have to be reclaimed.
  Result<Reservation> reserve(std::uint32_t length, bool may_evict = true);
  // Marks the item complete (the caller wrote its data and header fields).
  void publish(const Reservation& r);
  // Drops the reservation's pin. Without publish() first, the space stays
  // dead until the region is reused.
  void release(const Reservation& r);

  // ram::try_reclaim of region r (eviction_policy.h).
  bool try_reclaim(std::uint32_t r);
  void set_reclaim_sink(ReclaimSink sink) { sink_ = std::move(sink); }

  // Bytes held by open and sealed regions.
  std::uint64_t used_bytes() const;
 private:
  bool pin_open(std::uint32_t r, std::uint64_t& state);
  void seal(std::uint32_t r);
  std::uint32_t take_region(bool may_evict);
  // Visits the complete items of r written in generation gen, up to limit.
  void walk(std::uint32_t r, std::uint32_t gen, std::uint64_t limit,
            const std::function<void(const shm::ItemHeader&, std::span<const std::byte>)>& fn) const;

  shm::Segment& seg_;
  stats::Stats& stats_;
  EvictionPolicy& policy_;
  ReclaimSink sink_;
  Prefaulter prefault_;
  // The first never-used region the shared-memory file system could not
  // back (process-wide view): take_region tries none from here on.
  std::atomic<std::uint32_t> unbacked_from_{shm::kNoRegion};
};

}  // namespace objcache::ram
