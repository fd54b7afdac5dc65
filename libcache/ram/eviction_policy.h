// SPDX-License-Identifier: Apache-2.0
// EvictionPolicy: which sealed region to reclaim when the cache is full.
// Policies choose; RegionTable::try_reclaim does the compare-and-swap that
// makes a region ours, so a policy cannot free a region in use.
#pragma once

#include <cstdint>
#include <memory>

#include "objcache/config.h"

namespace objcache::ram {

class RegionTable;

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // Reclaims one region and returns it (now Reclaiming and owned by the
  // caller), or kNoRegion when none may be reclaimed: all are pinned or
  // in use, or the policy never evicts.
  virtual std::uint32_t reclaim(RegionTable& table) = 0;
};

// CLOCK over regions: a hit sets a region's reference bit; the hand clears
// set bits and reclaims the first region found without one.
class ClockPolicy final : public EvictionPolicy {
 public:
  std::uint32_t reclaim(RegionTable& table) override;
};

// Keeps what is cached and admits nothing more once full, so a data set
// larger than the cache keeps a stable hit ratio instead of thrashing.
class NoEvictionPolicy final : public EvictionPolicy {
 public:
  std::uint32_t reclaim(RegionTable&) override;
};

std::unique_ptr<EvictionPolicy> make_eviction_policy(Eviction e);

}  // namespace objcache::ram
