// SPDX-License-Identifier: Apache-2.0
// Dispatch state and the slow halves of the ownership tests: the mount table
// for paths (library.h), the registry of shim-owned DIR streams, the virtual
// current directory.
#include "dispatch.h"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "library.h"

namespace objcache::preload::dispatch {

constinit std::atomic<bool> g_mounts_active{false};
constinit FdTable g_fds;
constinit std::atomic<long> g_dirs_live{0};

namespace {

std::mutex g_dirs_mu;
std::vector<const DIR*>* g_dirs = nullptr;  // guarded by g_dirs_mu; never freed

bool has_dotdot(const char* path) noexcept {
  for (const char* p = path; (p = std::strstr(p, "..")) != nullptr; p += 2) {
    const bool starts = p == path || p[-1] == '/';
    const bool ends = p[2] == '\0' || p[2] == '/';
    if (starts && ends) return true;
  }
  return false;
}

void fork_lock() { g_dirs_mu.lock(); }
void fork_unlock() { g_dirs_mu.unlock(); }
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
  std::lock_guard<std::mutex> g(g_dirs_mu);
  return g_dirs != nullptr && std::find(g_dirs->begin(), g_dirs->end(), dir) != g_dirs->end();
}

bool register_dir(const DIR* dir) noexcept {
  try {
    std::lock_guard<std::mutex> g(g_dirs_mu);
    if (g_dirs == nullptr) g_dirs = new std::vector<const DIR*>;
    g_dirs->push_back(dir);
  } catch (...) {
    return false;
  }
  g_dirs_live.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool unregister_dir(const DIR* dir) noexcept {
  std::lock_guard<std::mutex> g(g_dirs_mu);
  if (g_dirs == nullptr) return false;
  auto it = std::find(g_dirs->begin(), g_dirs->end(), dir);
  if (it == g_dirs->end()) return false;
  g_dirs->erase(it);
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
