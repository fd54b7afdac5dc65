// SPDX-License-Identifier: Apache-2.0
// Gate: the node-wide count of GETs in flight, in the segment header,
// shared by every process of a cache. Readahead and background prefetch
// take a slot only while fewer than `cap` GETs are in flight
// (store.prefetch_concurrency); demand reads always go, but count, so
// background work yields to them. Background prefetch also yields while
// a readahead waits. Each process's slots are recorded in its stats slot,
// so those of a process that dies are given back (Stats::reap_dead): by
// any background request that finds the gate full, and by stats().
//
// The limit for background GETs adapts, node-wide, between a floor and
// `cap` (prefetch_concurrency, the ceiling): every GET reports how long its
// last attempt took and whether the store throttled it (observe()); over
// a window of as many GETs as the limit (at least 16) the limit shrinks by
// a quarter when any was throttled (503 SlowDown, 429), by an eighth when
// the mean latency passed twice the baseline (the lowest seen, drifting up
// slowly), and grows by a quarter when the gate was full most of the time
// and latency stayed within 1.3x the baseline, but for 64 windows after a
// throttle not past the limit it shrank to. It starts at 32 (or cap).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "objcache/config.h"
#include "shm/segment.h"
#include "stats/stats.h"

namespace objcache::fill {

// Uploads (upload/streaming_upload.cpp) take Prefetch slots on purpose,
// not a class of their own: demand reads never wait here, so no class can
// starve them through the gate; a part upload yields to readahead like
// prefetch does, and one that waited kGateWait goes as Demand, so a
// checkpoint's close is never held up for good by a directory prefetch.
enum class Priority : std::uint8_t { Demand = 0, Readahead = 1, Prefetch = 2 };

// Why the adaptive limit last changed.
enum class LimitReason : std::uint32_t { Start = 0, Grew = 1, Throttled = 2, LatencyRose = 3, Ceiling = 4 };
const char* to_string(LimitReason r);

// What one GET told about the store: how long its last attempt took, and
// how many of its attempts were throttled (a GET that failed as throttled
// counts one more).
struct GetSample {
  std::chrono::microseconds latency{0};
  int throttled = 0;
};

struct LimitState {
  int limit = 0;
  LimitReason reason = LimitReason::Start;
  std::int64_t changed_unix = 0;  // 0: never
};

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

  // The limit background GETs are held to now, for a ceiling of cap.
  int limit(int cap) const;
  // Feeds one finished GET into the window; may move the limit.
  void observe(const GetSample& s, int cap);
  LimitState limit_state(int cap) const;

  static constexpr int kStartLimit = kFetchStartConcurrency;
  static constexpr int kFloor = 4;
  static constexpr std::uint32_t kMinWindow = 16;
  static constexpr std::uint32_t kThrottleHold = 64;  // windows

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
