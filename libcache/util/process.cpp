// SPDX-License-Identifier: Apache-2.0
#include "util/process.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

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

namespace {

// True when /proc says pid has exited but is not reaped yet (a zombie): it
// will never finish anything it started. A process that exits with
// os._exit (multiprocessing workers do) stays one until its parent waits.
bool zombie(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": comm may hold spaces and parentheses; the state
  // follows the last ')'.
  const char* close_paren = std::strrchr(buf, ')');
  if (close_paren == nullptr || close_paren[1] != ' ') return false;
  char state = close_paren[2];
  return state == 'Z' || state == 'X';
}

}  // namespace

bool alive(pid_t pid) {
  if (pid <= 0) return false;
  int saved = errno;
  bool gone = (::kill(pid, 0) != 0 && errno == ESRCH) || zombie(pid);
  errno = saved;
  return !gone;
}

}  // namespace objcache::proc
