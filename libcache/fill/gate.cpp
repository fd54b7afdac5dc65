// SPDX-License-Identifier: Apache-2.0
#include "fill/gate.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
// A gate full for this long with no release: look for slots of dead processes.
constexpr std::chrono::milliseconds kReapAfter{1000};

}  // namespace

bool Gate::try_acquire(Priority p, int cap) {
  shm::SegmentHeader& h = seg_.header();
  if (p == Priority::Prefetch && h.readahead_waiting_until.load(std::memory_order_relaxed) > now_ns()) {
    return false;
  }
  std::uint32_t n = h.gets_in_flight.load(std::memory_order_relaxed);
  for (;;) {
    if (p != Priority::Demand && n >= static_cast<std::uint32_t>(std::max(1, cap))) return false;
    if (h.gets_in_flight.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) break;
  }
  stats_.add_gets_in_flight(1);
  return true;
}

bool Gate::acquire(Priority p, int cap, std::chrono::milliseconds timeout,
                        const std::function<bool()>& give_up) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  bool reaped = false;
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
    if (!reaped && now - start >= kReapAfter) {
      stats_.reap_dead();
      reaped = true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    wait_for_release(seq, std::min(left + std::chrono::milliseconds(1), std::chrono::milliseconds(20)));
  }
}

void Gate::release() {
  shm::SegmentHeader& h = seg_.header();
  h.gets_in_flight.fetch_sub(1, std::memory_order_acq_rel);
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
