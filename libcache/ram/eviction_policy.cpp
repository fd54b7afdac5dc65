// SPDX-License-Identifier: Apache-2.0
#include "ram/eviction_policy.h"

namespace objcache::ram {

bool try_reclaim(shm::RegionDesc& d) {
  std::uint64_t s = d.state.load(std::memory_order_acquire);
  if (shm::state_phase(s) != shm::RegionPhase::Sealed || shm::state_readers(s) != 0 ||
      d.pinned.load(std::memory_order_acquire) != 0) {
    return false;
  }
  std::uint64_t mine = shm::region_state(shm::state_gen(s) + 1, shm::RegionPhase::Reclaiming, 0);
  // acq_rel: we see all the writes of the last readers (their release
  // unpin), and nobody can pin the old generation after this.
  return d.state.compare_exchange_strong(s, mine, std::memory_order_acq_rel);
}

std::uint32_t ClockPolicy::reclaim(Regions regions) {
  const auto n = static_cast<std::uint32_t>(regions.descs.size());
  if (n == 0) return shm::kNoRegion;
  // Two sweeps: the first may only clear reference bits.
  for (std::uint32_t i = 0; i < 2 * n; ++i) {
    // relaxed: the hand only spreads processes over regions.
    auto r = static_cast<std::uint32_t>(regions.hand.fetch_add(1, std::memory_order_relaxed) % n);
    shm::RegionDesc& d = regions.descs[r];
    std::uint64_t s = d.state.load(std::memory_order_acquire);
    if (shm::state_phase(s) != shm::RegionPhase::Sealed || d.pinned.load(std::memory_order_relaxed) > 0) continue;
    if (d.referenced.exchange(0, std::memory_order_relaxed) != 0) continue;  // second chance
    if (try_reclaim(d)) return r;
  }
  return shm::kNoRegion;
}

std::uint32_t NoEvictionPolicy::reclaim(Regions) { return shm::kNoRegion; }

std::unique_ptr<EvictionPolicy> make_eviction_policy(Eviction e) {
  if (e == Eviction::None) return std::make_unique<NoEvictionPolicy>();
  return std::make_unique<ClockPolicy>();
}

}  // namespace objcache::ram
