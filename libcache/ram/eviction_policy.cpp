// SPDX-License-Identifier: Apache-2.0
#include "ram/eviction_policy.h"

#include "ram/region_table.h"

namespace objcache::ram {

std::uint32_t ClockPolicy::reclaim(RegionTable& table) {
  const std::uint32_t n = table.count();
  std::atomic<std::uint64_t>& hand = table.clock_hand();
  // Two sweeps: the first may only clear reference bits.
  for (std::uint32_t i = 0; i < 2 * n; ++i) {
    // relaxed: the hand only spreads processes over regions.
    auto r = static_cast<std::uint32_t>(hand.fetch_add(1, std::memory_order_relaxed) % n);
    shm::RegionDesc& d = table.desc(r);
    std::uint64_t s = d.state.load(std::memory_order_acquire);
    if (shm::state_phase(s) != shm::RegionPhase::Sealed || d.pinned.load(std::memory_order_relaxed) > 0) continue;
    if (d.referenced.exchange(0, std::memory_order_relaxed) != 0) continue;  // second chance
    if (table.try_reclaim(r)) return r;
  }
  return shm::kNoRegion;
}

std::uint32_t NoEvictionPolicy::reclaim(RegionTable&) { return shm::kNoRegion; }

std::unique_ptr<EvictionPolicy> make_eviction_policy(Eviction e) {
  if (e == Eviction::None) return std::make_unique<NoEvictionPolicy>();
  return std::make_unique<ClockPolicy>();
}

}  // namespace objcache::ram
