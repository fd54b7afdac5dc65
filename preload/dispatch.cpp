// SPDX-License-Identifier: Apache-2.0
// Dispatch state and the slow halves of the ownership tests: the mount table
// for paths (library.h), the registry of shim-owned DIR streams, the virtual
// current directory.
#include "dispatch.h"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "library.h"

namespace objcache::preload::dispatch {

constinit std::atomic<bool> g_mounts_active{false};
constinit FdTable g_fds;
constinit std::atomic<long> g_dirs_live{0};

namespace {

// The registry of shim-owned DIR streams: a fixed table of atomic slots,
// so dir_is_ours (every readdir of any stream while one of ours is open)
// takes no lock. A stream lives in one of the kProbe slots after its
// hash's; a lookup reads all kProbe of them (no tombstones needed). The
// rare stream that finds them all taken goes to an overflow list under a
// mutex, which a lookup reads only while the list is not empty.
constexpr std::size_t kSlots = 1024;
constexpr std::size_t kProbe = 16;
constinit std::atomic<const DIR*> g_slots[kSlots] = {};
std::mutex g_overflow_mu;
std::vector<const DIR*>* g_overflow = nullptr;  // guarded by g_overflow_mu; never freed
constinit std::atomic<long> g_overflow_live{0};

std::size_t home_of(const DIR* dir) noexcept {
  auto v = reinterpret_cast<std::uintptr_t>(dir);
  v ^= v >> 17;
  v *= 0x9e3779b97f4a7c15ull;
  return static_cast<std::size_t>(v >> 32) % kSlots;
}

bool has_dotdot(const char* path) noexcept {
  for (const char* p = path; (p = std::strstr(p, "..")) != nullptr; p += 2) {
    const bool starts = p == path || p[-1] == '/';
    const bool ends = p[2] == '\0' || p[2] == '/';
    if (starts && ends) return true;
  }
  return false;
}

void fork_lock() { g_overflow_mu.lock(); }
void fork_unlock() { g_overflow_mu.unlock(); }
__attribute__((constructor)) void dirs_init() { ::pthread_atfork(fork_lock, fork_unlock, fork_unlock); }

}  // namespace

bool path_is_ours_slow(const char* path) noexcept {
  ReentryGuard guard;
  ErrnoScope keep_errno;
  // An absolute path without "..": the allocation-free, exact pre-check.
  if (path[0] == '/' && !has_dotdot(path) && !lib::mounts().maybe_ours(path)) return false;
  const lib::Target t = lib::resolve(path);
  return t.where.ours() || t.is_above();
}

bool dir_is_ours_slow(const DIR* dir) noexcept {
  const std::size_t h = home_of(dir);
  for (std::size_t i = 0; i < kProbe; ++i) {
    // acquire: pairs with register_dir's release, so the stream is whole.
    if (g_slots[(h + i) % kSlots].load(std::memory_order_acquire) == dir) return true;
  }
  if (g_overflow_live.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard<std::mutex> g(g_overflow_mu);
  return g_overflow != nullptr && std::find(g_overflow->begin(), g_overflow->end(), dir) != g_overflow->end();
}

bool register_dir(const DIR* dir) noexcept {
  const std::size_t h = home_of(dir);
  bool placed = false;
  for (std::size_t i = 0; i < kProbe && !placed; ++i) {
    const DIR* empty = nullptr;
    placed = g_slots[(h + i) % kSlots].compare_exchange_strong(empty, dir, std::memory_order_release,
                                                              std::memory_order_relaxed);
  }
  if (!placed) {
    try {
      std::lock_guard<std::mutex> g(g_overflow_mu);
      if (g_overflow == nullptr) g_overflow = new std::vector<const DIR*>;
      g_overflow->push_back(dir);
      g_overflow_live.fetch_add(1, std::memory_order_release);
    } catch (...) {
      return false;
    }
  }
  g_dirs_live.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool unregister_dir(const DIR* dir) noexcept {
  const std::size_t h = home_of(dir);
  for (std::size_t i = 0; i < kProbe; ++i) {
    const DIR* mine = dir;
    if (g_slots[(h + i) % kSlots].compare_exchange_strong(mine, nullptr, std::memory_order_relaxed)) {
      g_dirs_live.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
  }
  std::lock_guard<std::mutex> g(g_overflow_mu);
  if (g_overflow == nullptr) return false;
  auto it = std::find(g_overflow->begin(), g_overflow->end(), dir);
  if (it == g_overflow->end()) return false;
  g_overflow->erase(it);
  g_overflow_live.fetch_sub(1, std::memory_order_release);
  g_dirs_live.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool stream_is_ours_slow(FILE* stream) noexcept {
  // fileno sets errno (EBADF) for streams without an fd (fmemopen, cookies).
  ErrnoScope keep_errno;
  return fd_is_ours(fileno(stream));
}

bool cwd_is_ours_slow() noexcept { return lib::has_virtual_cwd(); }

}  // namespace objcache::preload::dispatch
