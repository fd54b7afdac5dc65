// SPDX-License-Identifier: Apache-2.0
#include "util/process.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace objcache::proc {
namespace {

// relaxed: written by the single thread of a just-forked child before it
// can start others, or once at start-up; readers only compare values.
std::atomic<pid_t> g_pid{0};
std::atomic<std::uint64_t> g_fork_gen{0};

void on_fork_child() {
  g_pid.store(::getpid(), std::memory_order_relaxed);
  g_fork_gen.fetch_add(1, std::memory_order_relaxed);
}

struct Init {
  Init() {
    g_pid.store(::getpid(), std::memory_order_relaxed);
    ::pthread_atfork(nullptr, nullptr, on_fork_child);
  }
};
const Init g_init;

}  // namespace

pid_t self() {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {  // before static initialization ran (called from another initializer)
    p = ::getpid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

std::uint64_t fork_generation() { return g_fork_gen.load(std::memory_order_relaxed); }

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  int saved = errno;
  bool gone = ::kill(pid, 0) != 0 && errno == ESRCH;
  errno = saved;
  return !gone;
}

}  // namespace objcache::proc
