// SPDX-License-Identifier: Apache-2.0
#include "fill/gate.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

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
  const auto limit = static_cast<std::uint32_t>(std::max(1, cap));
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
    if (h.gets_in_flight.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
  }
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
