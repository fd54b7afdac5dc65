// SPDX-License-Identifier: Apache-2.0
// CircuitBreaker: a store found unreachable fails later requests at once
// instead of making each one wait out retry_deadline again. After a request
// gave up on transport failures (refused, reset, stalled, no answer before
// its deadline), the breaker opens: requests fail fast, except one probe
// every kProbeEvery, which goes to the store; the first answer of any kind
// (even an HTTP error: the store is there) closes it. Per store and per
// process; time is passed in, so it is a pure state machine. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace objcache::store {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kProbeEvery{1000};

  enum class Verdict { Go, Probe, FailFast };

  // Whether a new request may go to the store now. Probe: it may, as the
  // one probe of this interval (report its outcome as for any request).
  Verdict admit(Clock::time_point now) {
    std::int64_t until = open_until_.load(std::memory_order_acquire);
    if (until == 0) return Verdict::Go;
    if (ns(now) < until) return Verdict::FailFast;
    // Time for a probe: one request wins the interval.
    if (open_until_.compare_exchange_strong(until, ns(now + kProbeEvery), std::memory_order_acq_rel)) {
      return Verdict::Probe;
    }
    return Verdict::FailFast;
  }

  // The store answered (any HTTP status): close.
  void answered() { open_until_.store(0, std::memory_order_release); }

  // A request gave up on transport failures: open (or stay open) until the
  // next probe.
  void unreachable(Clock::time_point now) {
    std::int64_t want = ns(now + kProbeEvery);
    std::int64_t cur = open_until_.load(std::memory_order_acquire);
    while (cur < want && !open_until_.compare_exchange_weak(cur, want, std::memory_order_acq_rel)) {
    }
  }

  bool open() const { return open_until_.load(std::memory_order_acquire) != 0; }

 private:
  static std::int64_t ns(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count() | 1;
  }
  // 0: closed; else the monotonic time (ns, odd) before which requests
  // fail fast.
  std::atomic<std::int64_t> open_until_{0};
};

}  // namespace objcache::store
