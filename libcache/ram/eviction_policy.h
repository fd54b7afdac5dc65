// SPDX-License-Identifier: Apache-2.0
// EvictionPolicy: which sealed region to reclaim when the cache is full.
// A policy sees the regions only through Regions (their descriptors, the
// shared hand and the one compare-and-swap that makes a region the
// caller's), so it cannot free a region in use and knows nothing of items,
// reservations or the spill tier. RegionTable calls it; it never calls back.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "objcache/config.h"
#include "shm/layout.h"

namespace objcache::ram {

// Compare-and-swap r from Sealed, with no readers and no pinned items, to
// Reclaiming at the next generation. True when the region is now ours.
bool try_reclaim(shm::RegionDesc& d);

// What a policy may look at and do.
struct Regions {
  std::span<shm::RegionDesc> descs;
  std::atomic<std::uint64_t>& hand;  // the node-wide CLOCK hand (SegmentHeader)
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // Reclaims one region with try_reclaim and returns it (now Reclaiming
  // and owned by the caller), or shm::kNoRegion when none may be
  // reclaimed: all are pinned or in use, or the policy never evicts.
  virtual std::uint32_t reclaim(Regions regions) = 0;
};

// CLOCK over regions: a hit sets a region's reference bit; the hand clears
// set bits and reclaims the first region found without one.
class ClockPolicy final : public EvictionPolicy {
 public:
  std::uint32_t reclaim(Regions regions) override;
};

// Keeps what is cached and admits nothing more once full, so a data set
// larger than the cache keeps a stable hit ratio instead of thrashing.
class NoEvictionPolicy final : public EvictionPolicy {
 public:
  std::uint32_t reclaim(Regions) override;
};

std::unique_ptr<EvictionPolicy> make_eviction_policy(Eviction e);

}  // namespace objcache::ram
