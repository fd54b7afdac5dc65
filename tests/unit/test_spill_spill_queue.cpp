// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "spill/spill_queue.h"

using namespace objcache;
using namespace objcache::spill;

namespace {

PendingBlock block(std::uint32_t page, std::uint32_t len) {
  PendingBlock b;
  b.key.page = page;
  b.data_len = len;
  b.buf.reset(new std::byte[kHeaderSize + len]);
  return b;
}

}  // namespace

TEST_CASE("the queue hands blocks to the writer in order and flush waits for them") {
  std::mutex mu;
  std::vector<std::uint32_t> seen;
  auto q = SpillQueue::start(1 << 20, 100, [&](PendingBlock& b) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(b.key.page);
  });
  REQUIRE(q.ok());
  for (std::uint32_t i = 0; i < 50; ++i) REQUIRE((*q)->push(block(i, 1000)));
  (*q)->flush();
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(seen.size() == 50);
  for (std::uint32_t i = 0; i < 50; ++i) CHECK(seen[i] == i);
}

TEST_CASE("the queue refuses blocks past its byte and count bounds") {
  std::mutex gate;
  gate.lock();  // the writer blocks on its first block until we let it go
  std::atomic<int> written{0};
  std::atomic<bool> entered{false};
  auto q = SpillQueue::start(10000, 3, [&](PendingBlock&) {
    entered.store(true);
    std::lock_guard<std::mutex> lock(gate);
    written.fetch_add(1);
  });
  REQUIRE(q.ok());
  SpillQueue& queue = **q;
  CHECK(queue.push(block(0, 4000)));
  while (!entered.load()) std::this_thread::yield();  // block 0 is being written (still counted)
  CHECK(queue.push(block(1, 4000)));
  CHECK_FALSE(queue.push(block(2, 4000)));  // 12000 > 10000 bytes
  CHECK_FALSE(queue.has_room(4000));
  CHECK(queue.push(block(3, 100)));
  CHECK(queue.push(block(4, 100)));
  CHECK_FALSE(queue.push(block(5, 10)));  // 3 blocks wait already
  gate.unlock();
  queue.flush();
  CHECK(written.load() == 4);
  CHECK(queue.has_room(10000));
  CHECK(queue.push(block(6, 10000)));
  q->reset();  // the destructor writes what is left
  CHECK(written.load() == 5);
}
