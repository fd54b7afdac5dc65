// SPDX-License-Identifier: Apache-2.0
// Gate: the node-wide count of GETs in flight, in the segment header,
// shared by every process of a cache. Readahead and background prefetch
// take a slot only while fewer than `cap` GETs are in flight
// (store.prefetch_concurrency); demand reads always go, but count, so
// background work yields to them. Background prefetch also yields while
// a readahead waits. Each process's slots are recorded in its stats slot,
// so those of a process that dies are given back (Stats::reap_dead): by
// any background request that finds the gate full, and by stats().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "shm/segment.h"
#include "stats/stats.h"

namespace objcache::fill {

// Uploads (upload/streaming_upload.cpp) take Prefetch slots on purpose,
// not a class of their own: demand reads never wait here, so no class can
// starve them through the gate; a part upload yields to readahead like
// prefetch does, and one that waited kGateWait goes as Demand, so a
// checkpoint's close is never held up for good by a directory prefetch.
enum class Priority : std::uint8_t { Demand = 0, Readahead = 1, Prefetch = 2 };

class Gate {
 public:
  Gate(shm::Segment& seg, stats::Stats& stats) : seg_(seg), stats_(stats) {}

  // Takes a slot if priority allows it now. Demand always succeeds.
  bool try_acquire(Priority p, int cap);
  // Waits until a slot is free for p; false when timeout passes or
  // give_up (checked at least every 20 ms, may be empty) says so.
  bool acquire(Priority p, int cap, std::chrono::milliseconds timeout,
               const std::function<bool()>& give_up = {});
  void release();
  std::uint32_t in_flight() const;

 private:
  // Sleeps until gate_seq moves from seq (a release) or timeout passes.
  void wait_for_release(std::uint32_t seq, std::chrono::milliseconds timeout);
  // True at most once per kReapEvery in this process: time to look for the
  // slots of dead processes.
  bool reap_due();

  shm::Segment& seg_;
  stats::Stats& stats_;
  std::atomic<std::int64_t> last_reap_ns_{0};  // CLOCK_MONOTONIC
};

}  // namespace objcache::fill
