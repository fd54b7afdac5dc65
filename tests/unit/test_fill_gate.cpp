// SPDX-License-Identifier: Apache-2.0
// The gate's adaptive limit for background GETs, fed windows of samples as
// the fetcher feeds it: it grows while latency stays flat and the gate is
// full, shrinks on throttling and on latency rising past twice the
// baseline, and never leaves [floor, cap]. Demand GETs always go.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "fill/gate.h"
#include "stats/stats.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::fill;
using namespace std::chrono_literals;
using objcache::test::TempDir;

namespace {

CacheConfig cfg() {
  CacheConfig c;
  c.name = "gate";
  c.memory = 32ull << 20;
  c.spill_dir = "";
  return c;
}

struct Node {
  TempDir dir;
  std::unique_ptr<shm::Segment> seg;
  std::unique_ptr<stats::Stats> stats;
  std::unique_ptr<Gate> gate;
  Node() {
    auto s = shm::Segment::open(cfg(), dir.path());
    REQUIRE_MESSAGE(s.ok(), s.error().describe());
    seg = std::move(*s);
    stats = std::make_unique<stats::Stats>(*seg);
    gate = std::make_unique<Gate>(*seg, *stats);
  }

  // One window at the current limit: fills the gate to `in_flight` GETs
  // (background, as prefetch takes them), then reports each as taking
  // `latency`, `throttled` of them throttled once.
  void window(int cap, int in_flight, std::chrono::microseconds latency, int throttled = 0) {
    const int n = std::max<int>(Gate::kMinWindow, gate->limit(cap));
    int taken = 0;
    for (int i = 0; i < in_flight; ++i) taken += gate->try_acquire(Priority::Prefetch, cap) ? 1 : 0;
    for (int i = 0; i < taken; ++i) gate->release();
    for (int i = 0; i < n; ++i) gate->observe(GetSample{latency, i < throttled ? 1 : 0}, cap);
  }
};

}  // namespace

TEST_CASE("the limit starts at 32 and grows toward the ceiling while latency stays flat and the gate is full") {
  Node node;
  const int cap = 256;
  CHECK(node.gate->limit(cap) == 32);
  CHECK(node.gate->limit_state(cap).reason == LimitReason::Start);
  std::vector<int> seen;
  for (int w = 0; w < 30 && node.gate->limit(cap) < cap; ++w) {
    node.window(cap, node.gate->limit(cap), 20ms);
    seen.push_back(node.gate->limit(cap));
  }
  CHECK(node.gate->limit(cap) == cap);
  CHECK(node.gate->limit_state(cap).reason == LimitReason::Ceiling);
  CHECK(node.gate->limit_state(cap).changed_unix > 0);
  MESSAGE(seen.size() << " windows from 32 to " << cap);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
}

TEST_CASE("a gate that was never full does not grow: the limit was not what held GETs back") {
  Node node;
  for (int w = 0; w < 10; ++w) node.window(256, 4, 20ms);
  CHECK(node.gate->limit(256) == 32);
}

TEST_CASE("throttling shrinks the limit by a quarter per window, down to the floor, never below") {
  Node node;
  const int cap = 256;
  node.window(cap, 32, 20ms);  // the baseline
  node.window(cap, 32, 20ms, 1);
  CHECK(node.gate->limit(cap) == 40 - 10);  // grew to 40 first, then a quarter off
  CHECK(node.gate->limit_state(cap).reason == LimitReason::Throttled);
  for (int w = 0; w < 40; ++w) node.window(cap, 32, 20ms, 3);  // every other window shrinks
  CHECK(node.gate->limit(cap) == Gate::kFloor);
  // Background GETs are held to it; demand ones always go.
  int taken = 0;
  for (int i = 0; i < 10; ++i) taken += node.gate->try_acquire(Priority::Prefetch, cap) ? 1 : 0;
  CHECK(taken == Gate::kFloor);
  CHECK(node.gate->try_acquire(Priority::Demand, cap));
  for (int i = 0; i <= taken; ++i) node.gate->release();
}

TEST_CASE("latency past twice the baseline shrinks the limit; flat again, it grows back") {
  Node node;
  const int cap = 256;
  node.window(cap, 32, 20ms);
  const int before = node.gate->limit(cap);
  node.window(cap, before, 60ms);
  CHECK(node.gate->limit(cap) < before);
  CHECK(node.gate->limit_state(cap).reason == LimitReason::LatencyRose);
  const int low = node.gate->limit(cap);
  node.window(cap, low, 20ms);
  CHECK(node.gate->limit(cap) > low);
}

TEST_CASE("the limit is capped by each process's prefetch_concurrency, and 1 stays 1") {
  Node node;
  CHECK(node.gate->limit(8) == 8);
  CHECK(node.gate->limit(1) == 1);
  for (int w = 0; w < 5; ++w) node.window(8, 8, 20ms, 8);  // throttled hard
  CHECK(node.gate->limit(8) == 4);
  CHECK(node.gate->limit(1) == 1);
  for (int w = 0; w < 5; ++w) node.window(1, 1, 20ms, 1);
  CHECK(node.gate->limit(1) == 1);
}

TEST_CASE("after a throttle the limit holds where it shrank to for a while, and throttling just after is not punished twice") {
  Node node;
  const int cap = 256;
  node.window(cap, 32, 20ms);     // 32 -> 40
  node.window(cap, 40, 20ms, 1);  // throttled at 40 -> 30
  REQUIRE(node.gate->limit(cap) == 30);
  node.window(cap, 30, 20ms, 2);  // late reports of GETs sent at 40: no second shrink
  CHECK(node.gate->limit(cap) == 30);
  node.window(cap, 30, 20ms, 1);  // throttled at 30 too: shrinks
  CHECK(node.gate->limit(cap) == 23);
  for (int w = 0; w < 20; ++w) node.window(cap, node.gate->limit(cap), 20ms);
  CHECK(node.gate->limit(cap) == 23);  // held
  for (std::uint32_t w = 0; w < Gate::kThrottleHold; ++w) node.window(cap, node.gate->limit(cap), 20ms);
  CHECK(node.gate->limit(cap) > 23);  // the hold is over: it probes upward again
}
