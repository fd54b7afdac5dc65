// SPDX-License-Identifier: Apache-2.0
// eventually(pred): for a test that must see a state another thread or
// process reaches without signalling it (a waiter registered in a claim
// word in shared memory). Spins, yielding the CPU, until pred() holds;
// false after `limit` (a hang fails the check instead of the suite).
// Not a sleep: it orders nothing by time, it looks at the state itself.
#pragma once

#include <chrono>
#include <thread>

namespace objcache::test {

template <typename Pred>
bool eventually(Pred&& pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace objcache::test
