// SPDX-License-Identifier: Apache-2.0
#include "util/exit_hooks.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace objcache::exit_hooks {
namespace {

// Leaked on purpose: it must outlive every static destructor run at exit.
struct Hooks {
  std::mutex mu;
  std::vector<std::function<void()>> by_phase[2];
};
Hooks& hooks() {
  static Hooks* h = new Hooks;
  return *h;
}

// Once per process, whichever registration of run_all runs first.
// relaxed: exit handlers run one at a time on the exiting thread.
std::atomic<bool> g_ran{false};

void run_all() {
  if (g_ran.exchange(true, std::memory_order_relaxed)) return;
  for (int p = 0; p < 2; ++p) {
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard<std::mutex> g(hooks().mu);
      fns = hooks().by_phase[p];
    }
    for (auto& fn : fns) fn();
  }
}

}  // namespace

void add(Phase phase, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(hooks().mu);
    hooks().by_phase[static_cast<int>(phase)].push_back(std::move(fn));
  }
  // Registered again with every hook (a process adds a handful): atexit
  // runs the last registration first, so the hooks run before the exit
  // cleanups of whatever existed when the latest was added (libcurl and
  // OpenSSL of the store it uses), and the earlier registrations find
  // them done.
  std::atexit(run_all);
}

}  // namespace objcache::exit_hooks
