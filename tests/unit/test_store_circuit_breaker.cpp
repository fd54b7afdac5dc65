// SPDX-License-Identifier: Apache-2.0
#include "store/circuit_breaker.h"

#include <doctest/doctest.h>

using namespace objcache::store;
using namespace std::chrono_literals;
using V = CircuitBreaker::Verdict;

TEST_CASE("closed until a request finds the store unreachable, then fail fast") {
  CircuitBreaker b;
  const auto t0 = CircuitBreaker::Clock::time_point{} + 1000s;
  CHECK(b.admit(t0) == V::Go);
  CHECK_FALSE(b.open());
  b.unreachable(t0);
  CHECK(b.open());
  CHECK(b.admit(t0) == V::FailFast);
  CHECK(b.admit(t0 + 999ms) == V::FailFast);
}

TEST_CASE("one probe per interval; an answer closes, another failure keeps it open") {
  CircuitBreaker b;
  const auto t0 = CircuitBreaker::Clock::time_point{} + 1000s;
  b.unreachable(t0);
  const auto t1 = t0 + CircuitBreaker::kProbeEvery;
  CHECK(b.admit(t1) == V::Probe);
  CHECK(b.admit(t1) == V::FailFast);  // only one probe
  b.unreachable(t1 + 10ms);           // the probe failed
  CHECK(b.admit(t1 + 500ms) == V::FailFast);
  const auto t2 = t1 + 10ms + CircuitBreaker::kProbeEvery;
  CHECK(b.admit(t2) == V::Probe);
  b.answered();
  CHECK_FALSE(b.open());
  CHECK(b.admit(t2) == V::Go);
}
