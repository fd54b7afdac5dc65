// SPDX-License-Identifier: Apache-2.0
#include "stats/stats.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "util/log.h"
#include "util/process.h"

namespace objcache::stats {

shm::StatSlot* Stats::acquire_slot() {
  reap_dead();
  pid_t me = proc::self();
  shm::StatSlot* slots = seg_.stat_slots();
  for (std::uint32_t i = 0; i < shm::kMaxStatSlots; ++i) {
    std::int32_t expected = 0;
    if (slots[i].pid.compare_exchange_strong(expected, me, std::memory_order_acq_rel)) {
      return &slots[i];
    }
  }
  return nullptr;
}

shm::StatSlot* Stats::slot() {
  std::uint64_t gen = proc::fork_generation();
  if (slot_gen_.load(std::memory_order_acquire) == gen) return slot_.load(std::memory_order_relaxed);
  // First use, or we are a forked child still holding the parent's slot.
  const std::uint64_t mine = gen + 1;
  std::uint64_t held = lock_.load(std::memory_order_acquire);
  for (;;) {
    if (held == mine) {  // another thread of this process is taking the slot
      std::this_thread::yield();
      if (slot_gen_.load(std::memory_order_acquire) == gen) return slot_.load(std::memory_order_relaxed);
      held = lock_.load(std::memory_order_acquire);
      continue;
    }
    // Free (0), or left by a thread that did not survive a fork.
    if (lock_.compare_exchange_weak(held, mine, std::memory_order_acq_rel)) break;
  }
  if (slot_gen_.load(std::memory_order_acquire) != gen) {
    shm::StatSlot* s = acquire_slot();
    if (s == nullptr) {
      // More than kMaxStatSlots processes: this one's counts are lost,
      // never misattributed.
      OC_WARN("all %u stats slots of %s are taken; this process is not counted", shm::kMaxStatSlots,
              seg_.path().c_str());
    }
    slot_.store(s, std::memory_order_relaxed);
    slot_gen_.store(gen, std::memory_order_release);
  }
  lock_.store(0, std::memory_order_release);
  return slot_.load(std::memory_order_relaxed);
}

void Stats::add(shm::Counter c, std::uint64_t n, int mount) {
  shm::StatSlot* s = slot();
  if (s == nullptr) return;
  auto i = static_cast<std::uint32_t>(c);
  s->counters[0][i].fetch_add(n, std::memory_order_relaxed);
  if (mount >= 0 && mount < static_cast<int>(shm::kMaxMountStats)) {
    s->counters[1 + mount][i].fetch_add(n, std::memory_order_relaxed);
  }
}

void Stats::record_pin(std::uint32_t r, int delta) {
  shm::StatSlot* s = slot();
  if (s == nullptr) return;
  // Entries are [region+1:32][count:32]; only this process writes its slot
  // (its threads race with each other, hence the CAS loops).
  const std::uint64_t tag = static_cast<std::uint64_t>(r + 1) << 32;
  for (auto& e : s->pins) {
    std::uint64_t v = e.load(std::memory_order_acquire);
    while ((v >> 32) == (r + 1ull)) {
      std::uint64_t count = (v & 0xffffffffu) + static_cast<std::uint64_t>(static_cast<std::int64_t>(delta));
      std::uint64_t nv = (count & 0xffffffffu) == 0 ? 0 : tag | (count & 0xffffffffu);
      if (e.compare_exchange_weak(v, nv, std::memory_order_acq_rel)) return;
    }
  }
  if (delta < 0) return;  // not recorded (the table was full when pinned)
  for (auto& e : s->pins) {
    std::uint64_t v = 0;
    if (e.compare_exchange_strong(v, tag | 1u, std::memory_order_acq_rel)) return;
    if ((v >> 32) == (r + 1ull)) {  // another thread of ours recorded r meanwhile
      record_pin(r, delta);
      return;
    }
  }
  // Table full: the pin works, it just cannot be returned if we die holding it.
}

std::uint32_t Stats::reap_dead() {
  std::uint32_t returned = 0;
  shm::StatSlot* slots = seg_.stat_slots();
  shm::RegionDesc* regions = seg_.regions();
  for (std::uint32_t i = 0; i < shm::kMaxStatSlots; ++i) {
    std::int32_t pid = slots[i].pid.load(std::memory_order_acquire);
    if (pid <= 0 || proc::alive(pid)) continue;
    // -1 marks "being reaped" so two reapers do not both return the pins.
    if (!slots[i].pid.compare_exchange_strong(pid, -1, std::memory_order_acq_rel)) continue;
    for (auto& e : slots[i].pins) {
      std::uint64_t v = e.exchange(0, std::memory_order_acq_rel);
      if (v == 0) continue;
      std::uint32_t r = static_cast<std::uint32_t>(v >> 32) - 1;
      std::uint32_t count = static_cast<std::uint32_t>(v & 0xffffffffu);
      if (r < seg_.geometry().region_count && count > 0) {
        // The readers field is the low 24 bits of state: the count comes off
        // without touching gen or phase.
        regions[r].state.fetch_sub(count, std::memory_order_acq_rel);
        returned += count;
      }
    }
    std::uint32_t gets = slots[i].gets_in_flight.exchange(0, std::memory_order_acq_rel);
    if (gets > 0) {
      // Saturating: the slot may count one GET its process never got into
      // the header (fill::Gate::try_acquire orders them so).
      std::atomic<std::uint32_t>& h = seg_.header().gets_in_flight;
      std::uint32_t n = h.load(std::memory_order_relaxed);
      while (n > 0 && !h.compare_exchange_weak(n, n - std::min(n, gets), std::memory_order_acq_rel)) {
      }
    }
    slots[i].pid.store(0, std::memory_order_release);
  }
  // Expected after a process exits with prefetch GETs in flight (their room
  // stays reserved until it is gone), so not a warning.
  if (returned > 0) OC_INFO("returned %u region pins left by dead processes", returned);
  return returned;
}

void Stats::add_gets_in_flight(int delta) {
  shm::StatSlot* s = slot();
  if (s == nullptr) return;
  s->gets_in_flight.fetch_add(static_cast<std::uint32_t>(delta), std::memory_order_acq_rel);
}

void Stats::note_seen(std::uint64_t page_hash, std::uint32_t length) {
  // The index hashes the low bits; mix so the bitmap uses other ones.
  std::uint64_t bit = (page_hash * 0x9e3779b97f4a7c15ull >> 20) % seg_.geometry().seen_bits;
  std::atomic<std::uint64_t>& word = seg_.seen_bitmap()[bit / 64];
  const std::uint64_t mask = 1ull << (bit % 64);
  if ((word.load(std::memory_order_relaxed) & mask) != 0) return;
  if ((word.fetch_or(mask, std::memory_order_relaxed) & mask) != 0) return;
  shm::SegmentHeader& h = seg_.header();
  h.seen_pages.fetch_add(1, std::memory_order_relaxed);
  h.seen_bytes.fetch_add(length, std::memory_order_relaxed);
}

std::uint64_t Stats::working_set_bytes() const {
  const shm::SegmentHeader& h = seg_.header();
  const double set = static_cast<double>(h.seen_pages.load(std::memory_order_relaxed));
  const double bytes = static_cast<double>(h.seen_bytes.load(std::memory_order_relaxed));
  if (set <= 0) return 0;
  const double m = static_cast<double>(seg_.geometry().seen_bits);
  // Linear counting: n ~ -m ln(1 - set/m). Past 99% full it saturates.
  const double fill = std::min(set / m, 0.99);
  const double distinct = -m * std::log1p(-fill);
  return static_cast<std::uint64_t>(bytes * std::max(1.0, distinct / set));
}

StatsSnapshot Stats::snapshot() const {
  StatsSnapshot s;
  s.mounts.resize(shm::kMaxMountStats);
  const shm::StatSlot* slots = seg_.stat_slots();
  for (std::uint32_t i = 0; i < shm::kMaxStatSlots; ++i) {
    std::int32_t pid = slots[i].pid.load(std::memory_order_relaxed);
    if (pid > 0 && proc::alive(pid)) ++s.processes;
    for (std::uint32_t c = 0; c < shm::kNumCounters; ++c) {
      s.total.v[c] += slots[i].counters[0][c].load(std::memory_order_relaxed);
      for (std::uint32_t m = 0; m < shm::kMaxMountStats; ++m) {
        s.mounts[m].v[c] += slots[i].counters[1 + m][c].load(std::memory_order_relaxed);
      }
    }
  }
  return s;
}

}  // namespace objcache::stats
