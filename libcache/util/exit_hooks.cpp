// SPDX-License-Identifier: Apache-2.0
#include "util/exit_hooks.h"

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

std::once_flag g_registered;

void run_all() {
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
  std::call_once(g_registered, [] { std::atexit(run_all); });
}

}  // namespace objcache::exit_hooks
