// SPDX-License-Identifier: Apache-2.0
// Resolution of the real-function table: dlsym(RTLD_NEXT) once, stubs for
// what is missing, raw system calls for the calls dlsym itself triggers.
//
// The dlsym -> calloc trap (INTERCEPT.md section 4; jemalloc#329, #443): dlsym
// may allocate (glibc does for its dlerror buffer when a lookup fails), and
// an allocator that is itself interposed (jemalloc, tcmalloc, mimalloc's
// override) may call open/read/mmap while initialising, which lands in our
// entry points, whose slot may still be empty, whose resolution would call
// dlsym again: unbounded recursion, or a deadlock on the allocator's init
// lock. How this file avoids it:
//   - dlsym is only ever called with t_resolving set, under the re-entry
//     guard (guard.h), with errno saved around it;
//   - a call that arrives while t_resolving is set never calls dlsym: it
//     gets bootstrap_for(), a raw system call for the few things an
//     allocator or loader does (open, read, stat, mmap, readlink...), ENOSYS
//     for the rest, and that answer is not stored, so the slot still gets
//     the real function afterwards;
//   - the whole table is resolved once, from the library constructor (a
//     context that holds no lock of anyone else's), most of it by reading
//     the symbol tables of the objects after us (next_scope.h: no dlsym, no
//     allocation), the rest with dlsym; a call that comes
//     earlier, from inside someone else's initialisation, gets the raw
//     system call too, or else resolves only its own symbol (resolve_slow);
//   - the shim neither interposes malloc/calloc nor uses glibc-private
//     lookups (_dl_sym).
#include "real.h"

#include <dlfcn.h>
#include <sys/syscall.h>

#include <cstring>

#include "errno_scope.h"
#include "guard.h"
#include "next_scope.h"
#include "varargs.h"

namespace objcache::preload::real {

constinit std::atomic<void*> g_slots[kSymCount] = {};

namespace {

constexpr const char* kNames[] = {
#define OBJCACHE_PRELOAD_NAME(name, fail) #name,
    OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_NAME)
#undef OBJCACHE_PRELOAD_NAME
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == kSymCount);

// A symbol that glibc keeps only as a compat version (no default version)
// is invisible to dlsym, yet old binaries still bind to it. glibc 2.33
// stopped declaring __xstat & co.; should a later one demote them the same
// way, dlvsym with the versions such binaries were linked against finds them.
#if defined(__x86_64__) && !defined(__ILP32__)
constexpr const char* kCompatVersions[] = {"GLIBC_2.2.5", "GLIBC_2.4"};
#elif defined(__aarch64__)
constexpr const char* kCompatVersions[] = {"GLIBC_2.17"};
#else
constexpr const char* kCompatVersions[] = {"GLIBC_2.0"};
#endif

// Non-zero while this thread is inside dlsym for us. Calls that re-enter
// from there (dlsym -> calloc -> an interposing malloc such as jemalloc ->
// open -> our entry -> fn() -> an empty slot) must not call dlsym again:
// they get bootstrap_for(), below. initial-exec for the reasons in guard.h.
constinit thread_local unsigned t_resolving __attribute__((tls_model("initial-exec"))) = 0;

// kNotStarted until the first init() starts. Marked before the work is done
// (libfaketime's init-once): a call that re-enters during init, on this
// thread or another, never starts a second one.
enum InitState : int { kNotStarted, kRunning, kDone };
constinit std::atomic<int> g_init_state{kNotStarted};

// A test-only fault injection: OBJCACHE_PRELOAD_TEST_UNRESOLVED=a,b makes
// the resolver look up a name that does not exist instead of a and b, so the
// tests can check that a program calling a function whose real counterpart
// is absent fails softly, through dlsym's real failure path (which
// allocates). Read with getenv, which sees nothing from a .preinit_array
// hook (ASan's), before libc has set environ up: a symbol first resolved
// there cannot be hidden.
// init() reads the variable once for the whole table (a getenv per symbol
// is a scan of the environment per symbol, at every process start).
constinit const char* g_hidden = nullptr;
constinit bool g_hidden_read = false;

bool hidden_for_test(const char* name) noexcept {
  const char* list = g_hidden_read ? g_hidden : getenv("OBJCACHE_PRELOAD_TEST_UNRESOLVED");
  if (list == nullptr) return false;
  const size_t n = strlen(name);
  for (const char* p = list;;) {
    const char* comma = strchr(p, ',');
    const size_t len = comma != nullptr ? static_cast<size_t>(comma - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0) return true;
    if (comma == nullptr) return false;
    p = comma + 1;
  }
}

void* lookup(const char* name) noexcept {
  char renamed[96];
  if (hidden_for_test(name)) {
    constexpr char kPrefix[] = "objcache_preload_test_unresolved_";
    const size_t n = strnlen(name, sizeof renamed - sizeof kPrefix);
    memcpy(renamed, kPrefix, sizeof kPrefix - 1);
    memcpy(renamed + sizeof kPrefix - 1, name, n);
    renamed[sizeof kPrefix - 1 + n] = '\0';
    name = renamed;
  }
  void* p = dlsym(RTLD_NEXT, name);
  for (const char* version : kCompatVersions) {
    if (p != nullptr) break;
    p = dlvsym(RTLD_NEXT, name, version);
  }
  // A failed dlsym leaves a message for the next dlerror(); the program must
  // not find ours there.
  if (p == nullptr) (void)dlerror();
  return p;
}

// ---- stubs: what a missing function does --------------------------------

template <typename R, Fail K>
R fail_now() noexcept {
  if constexpr (K == Fail::kErrorNumber) {
    return ENOSYS;
  } else {
    set_errno(ENOSYS);
    if constexpr (K == Fail::kVoid) {
      return;
    } else if constexpr (K == Fail::kNull) {
      return nullptr;
    } else if constexpr (K == Fail::kMapFailed) {
      return MAP_FAILED;
    } else if constexpr (K == Fail::kZero) {
      return 0;
    } else {
      return static_cast<R>(-1);
    }
  }
}

// Stub<Fn, K>::call has exactly the type Fn (stubs are noexcept, which
// converts to the non-noexcept pointer types too).
template <typename F, Fail K>
struct Stub;
template <typename R, bool kNoexcept, Fail K, typename... A>
struct Stub<R (*)(A...) noexcept(kNoexcept), K> {
  static R call(A...) noexcept { return fail_now<R, K>(); }
};
template <typename R, bool kNoexcept, Fail K, typename... A>
struct Stub<R (*)(A..., ...) noexcept(kNoexcept), K> {
  static R call(A..., ...) noexcept { return fail_now<R, K>(); }
};

// Type-checks a function against the symbol's prototype and erases it.
template <Sym S>
void* as_slot(typename SymInfo<S>::Fn f) noexcept {
  return reinterpret_cast<void*>(f);
}

void* stub_for(Sym s) noexcept {
  switch (s) {
#define OBJCACHE_PRELOAD_STUB(name, fail) \
  case Sym::name:                         \
    return as_slot<Sym::name>(&Stub<SymInfo<Sym::name>::Fn, Fail::fail>::call);
    OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_STUB)
#undef OBJCACHE_PRELOAD_STUB
  }
  return nullptr;
}

// ---- bootstrap: calls that must not reach dlsym ---------------------------
// Raw system calls for what an allocator or loader does while dlsym runs or
// before our constructor (open, read, stat, mmap a file, readlink, a write
// to stderr). Never stored in the table. bootstrap_for() is nullptr for the
// other symbols, and for all of them on targets whose system calls take
// other arguments than these (32-bit mmap, lseek, stat).
#if defined(__x86_64__) || defined(__aarch64__)
#define OBJCACHE_PRELOAD_BOOTSTRAP 1

int bs_open(const char* path, int flags, ...) noexcept {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  return static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags, mode.mode));
}
int bs_openat(int dirfd, const char* path, int flags, ...) noexcept {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  return static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode.mode));
}
int bs_open_2(const char* path, int flags) noexcept {
  return static_cast<int>(syscall(SYS_openat, AT_FDCWD, path, flags));
}
int bs_openat_2(int dirfd, const char* path, int flags) noexcept {
  return static_cast<int>(syscall(SYS_openat, dirfd, path, flags));
}
ssize_t bs_read(int fd, void* buf, size_t n) noexcept { return syscall(SYS_read, fd, buf, n); }
// An allocator's or a sanitizer's message to stderr while dlsym runs.
ssize_t bs_write(int fd, const void* buf, size_t n) noexcept { return syscall(SYS_write, fd, buf, n); }
template <typename Off>
ssize_t bs_pread(int fd, void* buf, size_t n, Off off) noexcept {
  return syscall(SYS_pread64, fd, buf, n, off);
}
int bs_close(int fd) noexcept { return static_cast<int>(syscall(SYS_close, fd)); }
template <typename Off>
Off bs_lseek(int fd, Off off, int whence) noexcept {
  return static_cast<Off>(syscall(SYS_lseek, fd, off, whence));
}
template <typename Off>
void* bs_mmap(void* addr, size_t len, int prot, int flags, int fd, Off off) noexcept {
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
int bs_munmap(void* addr, size_t len) noexcept {
  return static_cast<int>(syscall(SYS_munmap, addr, len));
}
ssize_t bs_readlink(const char* path, char* buf, size_t len) noexcept {
  return syscall(SYS_readlinkat, AT_FDCWD, path, buf, len);
}
// On these 64-bit targets glibc's struct stat and stat64 are the kernel's.
template <typename St>
int bs_stat(const char* path, St* st) noexcept {
  return static_cast<int>(syscall(SYS_newfstatat, AT_FDCWD, path, st, 0));
}
template <typename St>
int bs_lstat(const char* path, St* st) noexcept {
  return static_cast<int>(syscall(SYS_newfstatat, AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW));
}
template <typename St>
int bs_fstat(int fd, St* st) noexcept {
  return static_cast<int>(syscall(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH));
}
template <typename St>
int bs_fstatat(int dirfd, const char* path, St* st, int flags) noexcept {
  return static_cast<int>(syscall(SYS_newfstatat, dirfd, path, st, flags));
}
#endif

void* bootstrap_for(Sym s) noexcept {
  switch (s) {
#ifdef OBJCACHE_PRELOAD_BOOTSTRAP
    case Sym::open: return as_slot<Sym::open>(&bs_open);
    case Sym::open64: return as_slot<Sym::open64>(&bs_open);
    case Sym::openat: return as_slot<Sym::openat>(&bs_openat);
    case Sym::openat64: return as_slot<Sym::openat64>(&bs_openat);
    case Sym::__open_2: return as_slot<Sym::__open_2>(&bs_open_2);
    case Sym::__open64_2: return as_slot<Sym::__open64_2>(&bs_open_2);
    case Sym::__openat_2: return as_slot<Sym::__openat_2>(&bs_openat_2);
    case Sym::__openat64_2: return as_slot<Sym::__openat64_2>(&bs_openat_2);
    case Sym::read: return as_slot<Sym::read>(&bs_read);
    case Sym::write: return as_slot<Sym::write>(&bs_write);
    case Sym::pread: return as_slot<Sym::pread>(&bs_pread<off_t>);
    case Sym::pread64: return as_slot<Sym::pread64>(&bs_pread<off64_t>);
    case Sym::close: return as_slot<Sym::close>(&bs_close);
    case Sym::lseek: return as_slot<Sym::lseek>(&bs_lseek<off_t>);
    case Sym::lseek64: return as_slot<Sym::lseek64>(&bs_lseek<off64_t>);
    case Sym::mmap: return as_slot<Sym::mmap>(&bs_mmap<off_t>);
    case Sym::mmap64: return as_slot<Sym::mmap64>(&bs_mmap<off64_t>);
    case Sym::munmap: return as_slot<Sym::munmap>(&bs_munmap);
    case Sym::readlink: return as_slot<Sym::readlink>(&bs_readlink);
    case Sym::stat: return as_slot<Sym::stat>(&bs_stat<struct stat>);
    case Sym::stat64: return as_slot<Sym::stat64>(&bs_stat<struct stat64>);
    case Sym::lstat: return as_slot<Sym::lstat>(&bs_lstat<struct stat>);
    case Sym::lstat64: return as_slot<Sym::lstat64>(&bs_lstat<struct stat64>);
    case Sym::fstat: return as_slot<Sym::fstat>(&bs_fstat<struct stat>);
    case Sym::fstat64: return as_slot<Sym::fstat64>(&bs_fstat<struct stat64>);
    case Sym::fstatat: return as_slot<Sym::fstatat>(&bs_fstatat<struct stat>);
    case Sym::fstatat64: return as_slot<Sym::fstatat64>(&bs_fstatat<struct stat64>);
#endif
    default: return nullptr;
  }
}

// Resolves one symbol and stores it. Two threads may race here for the same
// slot; both store the same value.
void* resolve_one(Sym s) noexcept {
  ++t_resolving;
  void* p = lookup(kNames[static_cast<unsigned>(s)]);
  --t_resolving;
  if (p == nullptr) p = stub_for(s);
  // relaxed: see fn() in real.h.
  g_slots[static_cast<unsigned>(s)].store(p, std::memory_order_relaxed);
  return p;
}

}  // namespace

const char* name(Sym s) noexcept { return kNames[static_cast<unsigned>(s)]; }

void init() noexcept {
  int expected = kNotStarted;
  // relaxed: the flag only elects who runs the loop; the slots publish
  // themselves (see fn()).
  if (!g_init_state.compare_exchange_strong(expected, kRunning, std::memory_order_relaxed)) return;
  ErrnoScope keep_errno;
  ReentryGuard guard;
  g_hidden = getenv("OBJCACHE_PRELOAD_TEST_UNRESOLVED");
  g_hidden_read = true;
  // The fast path (next_scope.h): the tables of the objects after us, read
  // directly; dlsym for whatever it is not sure of.
  static constinit NextScope scope;
  const bool fast = scope.init(reinterpret_cast<const void*>(&init));
  for (unsigned i = 0; i < kSymCount; ++i) {
    if (g_slots[i].load(std::memory_order_relaxed) != nullptr) continue;
    if (fast && !hidden_for_test(kNames[i])) {
      if (void* p = scope.find(kNames[i]); p != nullptr) {
        // relaxed: see fn() in real.h.
        g_slots[i].store(p, std::memory_order_relaxed);
        continue;
      }
    }
    resolve_one(static_cast<Sym>(i));
  }
  g_hidden_read = false;
  g_init_state.store(kDone, std::memory_order_relaxed);
}

// Resolve while the process is still single-threaded (the usual case for a
// preloaded library) rather than on the first call; calls made before this
// runs (other libraries' constructors) go through resolve_slow().
__attribute__((constructor)) static void resolve_at_load() { init(); }

void* resolve_slow(Sym s) noexcept {
  ErrnoScope keep_errno;
  void* bootstrap = bootstrap_for(s);
  // Re-entered from inside dlsym on this thread: never call dlsym again.
  if (t_resolving != 0) return bootstrap != nullptr ? bootstrap : stub_for(s);
  // A call before the constructor (another library's constructor, a preinit
  // hook) or while init() runs on another thread. The caller may hold a
  // lock of its own: jemalloc's initialisation calls readlink with its init
  // mutex held, and any dlsym that fails there allocates, re-enters jemalloc
  // and deadlocks on that mutex (jemalloc#443; tests/preload's
  // interposing_allocators case). So: a raw system call where we have one,
  // else this symbol alone (it normally exists, and a successful dlsym does
  // not allocate), never the whole table. Not waiting for init() also
  // avoids a loader-lock deadlock with a thread blocked in dlsym.
  if (bootstrap != nullptr && g_init_state.load(std::memory_order_relaxed) != kDone) {
    return bootstrap;
  }
  ReentryGuard guard;
  return resolve_one(s);
}

}  // namespace objcache::preload::real
