// SPDX-License-Identifier: Apache-2.0
#include "fill/gate.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace objcache::fill {
namespace {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// How long a waiting readahead holds background prefetch back.
constexpr std::int64_t kReadaheadHoldNs = 50'000'000;
// A full gate looks for slots of dead processes at most this often (per
// process): a scan is a kill(0) and a /proc read per attached process.
constexpr std::int64_t kReapEveryNs = 100'000'000;

// n - k, never below 0 (see try_acquire for why the count can be low).
void saturating_sub(std::atomic<std::uint32_t>& v, std::uint32_t k) {
  std::uint32_t n = v.load(std::memory_order_relaxed);
  while (n > 0 && !v.compare_exchange_weak(n, n - std::min(n, k), std::memory_order_acq_rel)) {
  }
}

}  // namespace

bool Gate::try_acquire(Priority p, int cap) {
  shm::SegmentHeader& h = seg_.header();
  if (p == Priority::Prefetch && h.readahead_waiting_until.load(std::memory_order_relaxed) > now_ns()) {
    return false;
  }
  // Our stats slot counts the GET before the header does, and after it on
  // release: the slot never holds less than this process holds of the
  // header. A process killed in between leaves its slot one too high, so
  // the reaper may give back one slot too many (the count saturates at 0
  // and the gate admits one extra GET for a while), but never leaves one
  // taken for good.
  stats_.add_gets_in_flight(1);
  const auto limit = static_cast<std::uint32_t>(this->limit(cap));
  std::uint32_t n = h.gets_in_flight.load(std::memory_order_relaxed);
  bool reaped = false;
  for (;;) {
    if (p != Priority::Demand && n >= limit) {
      // Full: perhaps of slots held by processes that died mid-GET. Give
      // them back now rather than when a waiter has waited long enough.
      if (!reaped && reap_due()) {
        reaped = true;
        stats_.reap_dead();
        n = h.gets_in_flight.load(std::memory_order_relaxed);
        continue;
      }
      stats_.add_gets_in_flight(-1);
      return false;
    }
    if (h.gets_in_flight.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) {
      // The window's most in flight: was the limit what held GETs back?
      std::uint32_t peak = h.window_peak.load(std::memory_order_relaxed);
      while (peak < n + 1 && !h.window_peak.compare_exchange_weak(peak, n + 1, std::memory_order_relaxed)) {
      }
      return true;
    }
  }
}

const char* to_string(LimitReason r) {
  switch (r) {
    case LimitReason::Start: return "start";
    case LimitReason::Grew: return "latency flat with the gate full: grew";
    case LimitReason::Throttled: return "the store throttled (503 SlowDown or 429): shrank";
    case LimitReason::LatencyRose: return "latency rose past twice the baseline: shrank";
    case LimitReason::Ceiling: return "at prefetch_concurrency, the ceiling";
  }
  return "?";
}

int Gate::limit(int cap) const {
  cap = std::max(1, cap);
  const auto l = static_cast<int>(seg_.header().fetch_limit.load(std::memory_order_relaxed));
  return std::clamp(l == 0 ? kStartLimit : l, std::min(kFloor, cap), cap);
}

LimitState Gate::limit_state(int cap) const {
  const shm::SegmentHeader& h = seg_.header();
  LimitState st;
  st.limit = limit(cap);
  st.reason = static_cast<LimitReason>(h.fetch_limit_reason.load(std::memory_order_relaxed));
  st.changed_unix = h.fetch_limit_changed.load(std::memory_order_relaxed);
  return st;
}

void Gate::observe(const GetSample& s, int cap) {
  shm::SegmentHeader& h = seg_.header();
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(1, s.latency.count()));
  if (s.throttled > 0) h.window_throttled.fetch_add(static_cast<std::uint32_t>(s.throttled), std::memory_order_relaxed);
  h.window_latency_us.fetch_add(us, std::memory_order_relaxed);
  const int lim = limit(cap);
  const std::uint32_t window = std::max<std::uint32_t>(kMinWindow, static_cast<std::uint32_t>(lim));
  // One observer closes each full window: the one that swaps its count
  // back to 0. Samples that land while it does go to the next window.
  std::uint32_t n = h.window_samples.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < window || !h.window_samples.compare_exchange_strong(n, 0, std::memory_order_relaxed)) return;
  const std::uint32_t throttled = h.window_throttled.exchange(0, std::memory_order_relaxed);
  const std::uint64_t sum = h.window_latency_us.exchange(0, std::memory_order_relaxed);
  const std::uint32_t peak = h.window_peak.exchange(0, std::memory_order_relaxed);
  if (n == 0) return;
  const std::uint64_t mean = std::max<std::uint64_t>(1, sum / n);
  std::uint64_t base = h.base_latency_us.load(std::memory_order_relaxed);
  // The baseline: the lowest window mean, drifting up by 1/32 of the gap a
  // window, so a store that got slower for good is accepted in time.
  base = base == 0 || mean < base ? mean : base + (mean - base) / 32;
  h.base_latency_us.store(static_cast<std::uint32_t>(std::min<std::uint64_t>(base, UINT32_MAX)),
                          std::memory_order_relaxed);
  const int floor = std::min(kFloor, std::max(1, cap));
  // For kThrottleHold windows after a throttle, growth stops at the limit
  // it shrank to; then it may probe past it again. The window right after
  // a shrink is not judged on throttling: its throttled GETs were mostly
  // sent before the shrink (a throttled GET reports when its retry is
  // answered, half a second or so later).
  const std::uint32_t since = h.windows_since_throttle.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto at = static_cast<int>(h.throttled_at.load(std::memory_order_relaxed));
  const int ceiling = at > 0 && since <= kThrottleHold ? std::clamp(at, floor, std::max(1, cap)) : std::max(1, cap);
  int next = lim;
  LimitReason why = LimitReason::Start;
  if (throttled > 0 && (at == 0 || since >= 2)) {
    next = std::max(floor, lim - std::max(1, lim / 4));
    why = LimitReason::Throttled;
    h.throttled_at.store(static_cast<std::uint32_t>(next), std::memory_order_relaxed);
    h.windows_since_throttle.store(0, std::memory_order_relaxed);
  } else if (throttled > 0) {
    // Just shrunk: wait for a window of GETs sent at the new limit.
  } else if (mean > 2 * base) {
    next = std::max(floor, lim - std::max(1, lim / 8));
    why = LimitReason::LatencyRose;
  } else if (peak * 4 >= static_cast<std::uint32_t>(lim) * 3 && mean * 10 <= base * 13 && lim < ceiling) {
    next = std::min(ceiling, lim + std::max(1, lim / 4));
    why = next == cap ? LimitReason::Ceiling : LimitReason::Grew;
  }
  if (next == lim) return;
  h.fetch_limit.store(static_cast<std::uint32_t>(next), std::memory_order_relaxed);
  h.fetch_limit_reason.store(static_cast<std::uint32_t>(why), std::memory_order_relaxed);
  h.fetch_limit_changed.store(static_cast<std::int64_t>(::time(nullptr)), std::memory_order_relaxed);
}

bool Gate::reap_due() {
  const std::int64_t now = now_ns();
  std::int64_t last = last_reap_ns_.load(std::memory_order_relaxed);
  // relaxed: a rate limit; two threads reaping at once is merely redundant.
  return now - last >= kReapEveryNs &&
         last_reap_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed);
}

bool Gate::acquire(Priority p, int cap, std::chrono::milliseconds timeout,
                        const std::function<bool()>& give_up) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // The release sequence is read before trying, so a release between the
    // try and the wait ends the wait at once instead of being missed.
    const std::uint32_t seq = seg_.header().gate_seq.load(std::memory_order_acquire);
    if (try_acquire(p, cap)) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline || (give_up && give_up())) return false;
    if (p == Priority::Readahead) {
      seg_.header().readahead_waiting_until.store(now_ns() + kReadaheadHoldNs, std::memory_order_relaxed);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    wait_for_release(seq, std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(20)));
  }
}

void Gate::release() {
  shm::SegmentHeader& h = seg_.header();
  saturating_sub(h.gets_in_flight, 1);
  stats_.add_gets_in_flight(-1);
  h.gate_seq.fetch_add(1, std::memory_order_acq_rel);
  // Shared futex: waiters are in other processes.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&h.gate_seq), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

std::uint32_t Gate::in_flight() const {
  return seg_.header().gets_in_flight.load(std::memory_order_relaxed);
}

void Gate::wait_for_release(std::uint32_t seq, std::chrono::milliseconds timeout) {
  shm::SegmentHeader& h = seg_.header();
  timespec ts{};
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1000000;
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&h.gate_seq), FUTEX_WAIT, seq, &ts, nullptr, 0);
}

}  // namespace objcache::fill
