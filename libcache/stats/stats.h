// SPDX-License-Identifier: Apache-2.0
// Stats: per-process slots in the segment. Each process counts into its own
// cache lines (no sharing on the hot path); readers sum every slot. The slot
// also records the reader pins the process holds, so a process that dies
// holding one does not keep a region from being reclaimed forever.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "shm/segment.h"

namespace objcache::stats {

struct CounterSet {
  std::array<std::uint64_t, shm::kNumCounters> v{};
  std::uint64_t get(shm::Counter c) const { return v[static_cast<std::uint32_t>(c)]; }
};

struct StatsSnapshot {
  CounterSet total;
  std::vector<CounterSet> mounts;  // kMaxMountStats entries
  std::uint32_t processes = 0;     // live slots
};

class Stats {
 public:
  explicit Stats(shm::Segment& seg) : seg_(seg) {}

  // Adds n to counter c, overall and for mount (when 0 <= mount < kMaxMountStats).
  void add(shm::Counter c, std::uint64_t n, int mount = -1);
  // Records that this process took (+1) or dropped (-1) a pin on region r.
  void record_pin(std::uint32_t r, int delta);
  StatsSnapshot snapshot() const;
  // Adds delta to the fetch-gate slots this process holds (fetch/gate.h),
  // so that reap_dead can give back the slots of a process that died.
  void add_gets_in_flight(int delta);

  // The working set: marks a data page as read. The first read of a page
  // (by its hash in the seen bitmap) adds its length. One relaxed load when
  // the page was seen before.
  void note_seen(std::uint64_t page_hash, std::uint32_t length);
  // Distinct bytes read since the segment was made: the bitmap's bytes,
  // corrected for hash collisions (linear counting).
  std::uint64_t working_set_bytes() const;
  // Returns the pins and gate slots of dead processes; frees their slots
  // (keeping their counts). Returns how many pins were returned.
  std::uint32_t reap_dead();

 private:
  shm::StatSlot* slot();
  shm::StatSlot* acquire_slot();

  shm::Segment& seg_;
  // The slot of this process and the fork generation it was taken in.
  // acquire/release: a thread that sees the generation sees the slot.
  std::atomic<shm::StatSlot*> slot_{nullptr};
  std::atomic<std::uint64_t> slot_gen_{~0ull};
  // Taking a slot is serialized by a lock word holding (fork generation
  // + 1) of its holder: a word left by a thread of the parent at fork time
  // is stale in the child and simply taken over, so a fork never deadlocks.
  std::atomic<std::uint64_t> lock_{0};
};

}  // namespace objcache::stats
