// SPDX-License-Identifier: Apache-2.0
// Loading the engine: a state word (kNone -> kLoading -> kReady | kFailed)
// that one thread moves out of kNone and the others wait on with a futex.
//
// Why it cannot deadlock:
//   - fork: the fork entry point waits for a load in flight (settle)
//     before calling the real fork, never from an atfork handler (the
//     engine's constructors register atfork handlers, which takes the lock
//     glibc holds while running them); a child forked by some other way in
//     the middle of a load finds kLoading and marks it kFailed;
//   - a vfork child (same memory as its parent, its own pid) never loads;
//   - a signal handler never loads: dlopen takes the loader lock and
//     mallocs, and the code the signal interrupted may hold either. A
//     thread that has a signal with a handler blocked is taken to be in
//     that handler (the kernel blocks a signal while its handler runs,
//     unless SA_NODEFER) and gets EAGAIN; its next call outside the
//     handler loads. A thread waiting for another's load is not in a
//     handler, so the loader never waits for it;
//   - the loading thread holds the re-entry guard throughout, so whatever
//     dlopen and the engine's constructors and init call passes through.
#include "engine_loader.h"

#include <dlfcn.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "fd_table.h"
#include "guard.h"
#include "real.h"

namespace objcache::preload::engine {

namespace {

enum State : int { kNone, kLoading, kReady, kFailed };

// The state word. acquire/release: a thread that sees kReady sees g_ops
// filled in by the loader.
constinit std::atomic<int> g_state{kNone};
constinit EngineOps g_ops = {};
constinit std::atomic<long> g_loader_tid{0};
// The pid this image knows (set at start and by the atfork child handler):
// another pid is a vfork child. relaxed: only ever compared with getpid.
constinit std::atomic<long> g_pid{0};

long raw_gettid() noexcept { return ::syscall(SYS_gettid); }
long raw_getpid() noexcept { return ::syscall(SYS_getpid); }

void futex_wait(int expected) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&g_state), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}
void futex_wake_all() noexcept {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&g_state), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}
static_assert(sizeof(std::atomic<int>) == sizeof(int) && std::atomic<int>::is_always_lock_free);

// One line on stderr, through the real write (no stdio, no allocation).
void say(const char* a, const char* b = "", const char* c = "", const char* d = "") noexcept {
  char line[2048];
  std::size_t n = 0;
  for (const char* part : {"objcache: ", a, b, c, d, "\n"}) {
    const std::size_t len = std::strlen(part);
    const std::size_t take = len < sizeof line - 1 - n ? len : sizeof line - 1 - n;
    std::memcpy(line + n, part, take);
    n += take;
  }
  (void)real::fn<Sym::write>()(STDERR_FILENO, line, n);
}

// Whether a signal that has a handler is blocked on this thread: then this
// is, as far as we can tell, that handler.
bool maybe_in_signal_handler() noexcept {
  sigset_t blocked;
  if (::pthread_sigmask(SIG_BLOCK, nullptr, &blocked) != 0) return false;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP || ::sigismember(&blocked, sig) != 1) continue;
    struct sigaction sa {};
    if (::sigaction(sig, nullptr, &sa) != 0) continue;
    const bool handled = (sa.sa_flags & SA_SIGINFO) != 0
                             ? sa.sa_sigaction != nullptr
                             : sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
    if (handled) return true;
  }
  return false;
}

// The engine's path: beside the shim (dladdr of our own code), else the
// bare name (the loader's search path).
void engine_path(char* out, std::size_t size) noexcept {
  Dl_info info{};
  const char* self = nullptr;
  if (::dladdr(reinterpret_cast<const void*>(&engine_path), &info) != 0) self = info.dli_fname;
  const char* slash = self != nullptr ? std::strrchr(self, '/') : nullptr;
  const std::size_t dir = slash != nullptr ? static_cast<std::size_t>(slash - self) + 1 : 0;
  const std::size_t name = std::strlen(kFileName);
  if (dir + name + 1 > size) {
    std::memcpy(out, kFileName, name + 1);
    return;
  }
  std::memcpy(out, self, dir);
  std::memcpy(out + dir, kFileName, name + 1);
}

const ShimState* shim_state() noexcept {
  static constinit ShimState s = {};
  s.abi = kAbi;
  s.real_slots = real::g_slots;
  s.resolve_slow = &real::resolve_slow;
  s.real_name = &real::name;
  s.depth = &shim_depth;
  s.fds = &dispatch::g_fds;
  s.mounts_active = &dispatch::g_mounts_active;
  s.dirs_live = &dispatch::g_dirs_live;
  s.register_dir = &dispatch::register_dir;
  s.unregister_dir = &dispatch::unregister_dir;
  s.dir_is_ours = &dispatch::dir_is_ours_slow;
  return &s;
}

// The load itself, on the one thread that won kNone -> kLoading.
State load() noexcept {
  ReentryGuard guard;
  ErrnoScope keep_errno;
  char path[PATH_MAX];
  engine_path(path, sizeof path);
  void* h = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = ::dlerror();
    say("cannot load the engine ", path, ": ", why != nullptr ? why : "unknown error");
    return kFailed;
  }
  auto init = reinterpret_cast<InitFn>(::dlsym(h, kInitName));
  if (init == nullptr) {
    (void)::dlerror();
    say("cannot load the engine ", path, ": no ", kInitName);
    return kFailed;
  }
  if (init(shim_state(), &g_ops) != 0) {
    say("the engine ", path, " refused to start (a shim and an engine from different builds?)");
    return kFailed;
  }
  return kReady;
}

void fork_child() noexcept {
  g_pid.store(raw_getpid(), std::memory_order_relaxed);
  // A fork by a path that did not settle (not through our fork) while
  // another thread was loading: that thread is not in this child, and its
  // half-finished load cannot be trusted.
  int loading = kLoading;
  g_state.compare_exchange_strong(loading, kFailed, std::memory_order_relaxed);
}

}  // namespace

const EngineOps* ready() noexcept {
  return g_state.load(std::memory_order_acquire) == kReady ? &g_ops : nullptr;
}

const EngineOps* get(int* error) noexcept {
  int s = g_state.load(std::memory_order_acquire);
  if (s == kReady) return &g_ops;
  if (s == kFailed) {
    *error = EIO;
    return nullptr;
  }
  if (raw_getpid() != g_pid.load(std::memory_order_relaxed) || maybe_in_signal_handler()) {
    *error = EAGAIN;  // a vfork child, or a signal handler: see the top of this file
    return nullptr;
  }
  s = kNone;
  // acquire on failure: see the winner's state (on success too: GCC 12
  // refuses a failure order stronger than the success order; the loader
  // publishes with its release store below).
  if (g_state.compare_exchange_strong(s, kLoading, std::memory_order_acquire, std::memory_order_acquire)) {
    g_loader_tid.store(raw_gettid(), std::memory_order_relaxed);
    const State done = load();
    g_state.store(done, std::memory_order_release);
    futex_wake_all();
    s = done;
  } else if (s == kLoading && g_loader_tid.load(std::memory_order_relaxed) == raw_gettid()) {
    *error = EIO;  // re-entered from the load itself: unreachable under the guard
    return nullptr;
  } else {
    while ((s = g_state.load(std::memory_order_acquire)) == kLoading) futex_wait(kLoading);
  }
  if (s == kReady) return &g_ops;
  *error = EIO;
  return nullptr;
}

void settle() noexcept {
  if (g_state.load(std::memory_order_acquire) != kLoading) return;
  if (g_loader_tid.load(std::memory_order_relaxed) == raw_gettid()) return;
  int s;
  while ((s = g_state.load(std::memory_order_acquire)) == kLoading) futex_wait(kLoading);
}

void start(bool eager) noexcept {
  g_pid.store(raw_getpid(), std::memory_order_relaxed);
  ::pthread_atfork(nullptr, nullptr, fork_child);
  if (eager) {
    int err = 0;
    (void)get(&err);
  }
}

}  // namespace objcache::preload::engine
