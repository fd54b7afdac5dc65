// SPDX-License-Identifier: Apache-2.0
// Dispatch state and the slow halves of the ownership tests in the shim:
// the mount prefixes for paths (prefixes.h, then the engine's exact answer),
// the registry of shim-owned DIR streams, the virtual current directory (the
// engine's). And the shim's constructor.
#include "dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstring>

#include "engine_loader.h"
#include "prefixes.h"

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
// The overflow list: an array of anonymous pages that doubles when full
// (the old one is kept: a few pages, once per doubling), guarded by
// g_overflow_mu. A pthread mutex rather than std::mutex: the shim links no
// C++ runtime.
pthread_mutex_t g_overflow_mu = PTHREAD_MUTEX_INITIALIZER;
const DIR** g_overflow = nullptr;
std::size_t g_overflow_size = 0;
std::size_t g_overflow_cap = 0;
constinit std::atomic<long> g_overflow_live{0};

class OverflowLock {
 public:
  OverflowLock() noexcept { ::pthread_mutex_lock(&g_overflow_mu); }
  ~OverflowLock() { ::pthread_mutex_unlock(&g_overflow_mu); }
  OverflowLock(const OverflowLock&) = delete;
  OverflowLock& operator=(const OverflowLock&) = delete;
};

bool overflow_push(const DIR* dir) noexcept {
  if (g_overflow_size == g_overflow_cap) {
    const std::size_t cap = g_overflow_cap == 0 ? 512 : g_overflow_cap * 2;
    void* mem = real::fn<Sym::mmap>()(nullptr, cap * sizeof(const DIR*), PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return false;
    auto* grown = static_cast<const DIR**>(mem);
    if (g_overflow_size != 0) std::memcpy(grown, g_overflow, g_overflow_size * sizeof(const DIR*));
    g_overflow = grown;
    g_overflow_cap = cap;
  }
  g_overflow[g_overflow_size++] = dir;
  return true;
}

// The index of dir in the overflow list, or -1.
long overflow_find(const DIR* dir) noexcept {
  for (std::size_t i = 0; i < g_overflow_size; ++i) {
    if (g_overflow[i] == dir) return static_cast<long>(i);
  }
  return -1;
}

std::size_t home_of(const DIR* dir) noexcept {
  auto v = reinterpret_cast<std::uintptr_t>(dir);
  v ^= v >> 17;
  v *= 0x9e3779b97f4a7c15ull;
  return static_cast<std::size_t>(v >> 32) % kSlots;
}

void fork_lock() { ::pthread_mutex_lock(&g_overflow_mu); }
void fork_unlock() { ::pthread_mutex_unlock(&g_overflow_mu); }

}  // namespace

bool path_is_ours_slow(const char* path) noexcept {
  if (const engine::EngineOps* ops = engine::ready(); ops != nullptr) return ops->path_is_ours(path);
  ReentryGuard guard;
  ErrnoScope keep_errno;
  // Before the engine: the prefixes say no for every path that is not in
  // a mount (exactly, see prefixes.h); anything else loads the engine.
  if (prefixes::match(path) == prefixes::Match::kNone) return false;
  int err = 0;
  const engine::EngineOps* ops = engine::get(&err);
  // No engine (EIO, EAGAIN): ours all the same, so the call fails with that
  // errno (forward) rather than reaching the kernel as a local path.
  if (ops == nullptr) return true;
  return ops->path_is_ours(path);
}

bool engine_loaded() noexcept { return engine::ready() != nullptr; }

bool engine_loaded_after_settling() noexcept {
  engine::settle();
  return engine::ready() != nullptr;
}

bool dir_is_ours_slow(const DIR* dir) noexcept {
  const std::size_t h = home_of(dir);
  for (std::size_t i = 0; i < kProbe; ++i) {
    // acquire: pairs with register_dir's release, so the stream is whole.
    if (g_slots[(h + i) % kSlots].load(std::memory_order_acquire) == dir) return true;
  }
  if (g_overflow_live.load(std::memory_order_acquire) == 0) return false;
  OverflowLock g;
  return overflow_find(dir) >= 0;
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
    OverflowLock g;
    if (!overflow_push(dir)) return false;
    g_overflow_live.fetch_add(1, std::memory_order_release);
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
  OverflowLock g;
  const long i = overflow_find(dir);
  if (i < 0) return false;
  g_overflow[i] = g_overflow[--g_overflow_size];
  g_overflow_live.fetch_sub(1, std::memory_order_release);
  g_dirs_live.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

bool stream_is_ours_slow(FILE* stream) noexcept {
  // fileno sets errno (EBADF) for streams without an fd (fmemopen, cookies).
  ErrnoScope keep_errno;
  return fd_is_ours(fileno(stream));
}

bool cwd_is_ours_slow() noexcept {
  const engine::EngineOps* ops = engine::ready();
  return ops != nullptr && ops->cwd_is_ours();
}

int pass_chdir(const char* path) noexcept {
  const int r = real::fn<Sym::chdir>()(path);
  if (r == 0 && !in_shim() && mounts_active().load(std::memory_order_relaxed) && !engine_loaded()) {
    ReentryGuard guard;
    ErrnoScope keep_errno;
    prefixes::refresh_cwd();
  }
  return r;
}

int pass_fchdir(int fd) noexcept {
  const int r = real::fn<Sym::fchdir>()(fd);
  if (r == 0 && !in_shim() && mounts_active().load(std::memory_order_relaxed) && !engine_loaded()) {
    ReentryGuard guard;
    ErrnoScope keep_errno;
    prefixes::refresh_cwd();
  }
  return r;
}

}  // namespace objcache::preload::dispatch

namespace objcache::preload {

unsigned* shim_depth() noexcept { return &t_shim_depth; }

}  // namespace objcache::preload

namespace objcache::preload::dispatch {

namespace {

// The shim's start: the real table, the mount prefixes, and the engine at
// once only when the prefixes cannot be trusted, or when the previous
// program image of this process handed state over (files being written,
// a current directory inside a mount). After real.cpp's constructor (same
// object, unprioritised constructors run in link order; init() is
// idempotent anyway).
__attribute__((constructor)) void shim_start() {
  real::init();
  ::pthread_atfork(fork_lock, fork_unlock, fork_unlock);
  ReentryGuard guard;
  ErrnoScope keep_errno;
  const prefixes::Scan scan = prefixes::load();
  if (scan == prefixes::Scan::kNoMounts) return;
  g_mounts_active.store(true, std::memory_order_release);
  const char* vcwd = ::getenv("OBJCACHE_VCWD");
  const bool handed = ::getenv("OBJCACHE_STAGED") != nullptr ||
                      (vcwd != nullptr && vcwd[0] == '/' && prefixes::cwd_is_placeholder());
  engine::start(scan == prefixes::Scan::kUnsure || handed);
}

}  // namespace

}  // namespace objcache::preload::dispatch
