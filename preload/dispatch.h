// SPDX-License-Identifier: Apache-2.0
// The middle layer (XRootD's XrdPosixXrootd role): answers "is this path, fd,
// DIR* or FILE* ours?" for the entry points, and runs the calls that are ours
// under the re-entry guard with errno discipline. Owns the fd table. Must
// not: call the library for anything that is not ours, allocate, lock or
// make a system call on the pass-through path of absolute paths and fds
// (a relative path, or one with "..", is resolved against the cwd).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

#include <atomic>
#include <cstddef>
#include <type_traits>

#include "errno_scope.h"
#include "fd_table.h"
#include "guard.h"
#include "real.h"

namespace objcache::preload::dispatch {

// ---- state ------------------------------------------------------------------
// All of it lives in the shim (libobjcache_preload.so); the engine reaches
// it through the pointers engine_link.h's ShimState lends it, via the
// accessors below, so there is one of each per process.
#ifndef OBJCACHE_PRELOAD_ENGINE
// True once a configuration with at least one mount is known (the prefix
// scanner's, then the engine's full parse). While false (no config, or no
// mount) every path is passed through after one load.
extern std::atomic<bool> g_mounts_active;
// Virtual fds (real kernel fd numbers the shim serves).
extern FdTable g_fds;
// Open shim-owned DIR streams; 0 = none.
extern std::atomic<long> g_dirs_live;
inline std::atomic<bool>& mounts_active() noexcept { return g_mounts_active; }
inline FdTable& fds() noexcept { return g_fds; }
inline std::atomic<long>& dirs_live() noexcept { return g_dirs_live; }
#else
struct ShimRefs {
  FdTable* fds;
  std::atomic<bool>* mounts_active;
  std::atomic<long>* dirs_live;
};
extern ShimRefs g_shim;  // set by the engine's init, before anything else runs
inline std::atomic<bool>& mounts_active() noexcept { return *g_shim.mounts_active; }
inline FdTable& fds() noexcept { return *g_shim.fds; }
inline std::atomic<long>& dirs_live() noexcept { return *g_shim.dirs_live; }
#endif

// The slow halves, reached only when something is ours somewhere. The
// shim's path_is_ours_slow matches the mount prefixes and asks the engine
// (loading it) only for a path that may be ours; the engine's is exact.
bool path_is_ours_slow(const char* path) noexcept;
bool dir_is_ours_slow(const DIR* dir) noexcept;
bool stream_is_ours_slow(FILE* stream) noexcept;
bool cwd_is_ours_slow() noexcept;
// Whether the engine is loaded (always, in the engine); the second waits
// for a load another thread has in flight.
bool engine_loaded() noexcept;
bool engine_loaded_after_settling() noexcept;

// The registry of shim-owned DIR streams (dir_is_ours).
bool register_dir(const DIR* dir) noexcept;
bool unregister_dir(const DIR* dir) noexcept;

// ---- "is it ours?" ------------------------------------------------------------
// relaxed loads throughout: these are hints about state that the calling
// thread either set up itself or learned of through its own synchronisation
// (it cannot hold one of our fds or DIR*s without having seen them made).

// An absolute path, or a relative one against the current directory, that
// falls under a mount. NULL (a caller's error, which libc reports as EFAULT)
// is never ours.
inline bool path_is_ours(const char* path) noexcept {
  return mounts_active().load(std::memory_order_relaxed) && path != nullptr &&
         path_is_ours_slow(path);
}

inline bool fd_is_ours(int fd) noexcept { return fds().find(fd) != nullptr; }

// A *at() call: an absolute path is judged alone; a relative one against
// dirfd (AT_FDCWD: the current directory); an empty path with AT_EMPTY_PATH
// names dirfd itself.
inline bool at_is_ours(int dirfd, const char* path) noexcept {
  if (path != nullptr && path[0] == '/') return path_is_ours(path);
  if (dirfd == AT_FDCWD) return path_is_ours(path);
  return fd_is_ours(dirfd);
}

// Any fd in [first, last] (close_range, closefrom).
inline bool fd_range_has_ours(unsigned first, unsigned last) noexcept {
  return fds().any() && fds().any_in_range(first, last);
}

inline bool dir_is_ours(const DIR* dir) noexcept {
  return dirs_live().load(std::memory_order_relaxed) != 0 && dir_is_ours_slow(dir);
}

inline bool stream_is_ours(FILE* stream) noexcept {
  return fds().any() && stream_is_ours_slow(stream);
}


inline bool cwd_is_ours() noexcept {
  return mounts_active().load(std::memory_order_relaxed) && cwd_is_ours_slow();
}

// exec and posix_spawn: a child would inherit virtual fds, which must be
// materialised first (DESIGN.md, "Virtual fds are real kernel fds").
// And a virtual cwd is handed to the new image through its environment.
inline bool exec_needs_work() noexcept { return fds().any() || cwd_is_ours(); }

// fork: the library has per-process state to hand over (its atfork handlers
// do the rest), once the engine is loaded: before that there is none, and a
// child loads its own engine when it needs one.
// A load in flight on another thread is waited for first, so the child
// never sees half of one.
inline bool fork_needs_work() noexcept {
  return mounts_active().load(std::memory_order_relaxed) && engine_loaded_after_settling();
}

// chdir: the engine keeps the current directory it resolves relative paths
// against once it is loaded, or when the target may be ours; before that
// the shim keeps it (pass_chdir).
inline bool chdir_is_ours(const char* path) noexcept {
  return mounts_active().load(std::memory_order_relaxed) && (engine_loaded() || path_is_ours(path));
}
inline bool fchdir_is_ours() noexcept {
  return mounts_active().load(std::memory_order_relaxed) && engine_loaded();
}
// The real chdir/fchdir, then the shim's copy of the current directory is
// refreshed (while mounts are configured and the engine is not loaded).
int pass_chdir(const char* path) noexcept;
int pass_fchdir(int fd) noexcept;

// ---- serving what is ours -------------------------------------------------

// What a handler returns: the value for the caller and the errno to set (0:
// leave the caller's errno as it was).
template <typename R>
struct Outcome {
  R value;
  int error;
};
template <>
struct Outcome<void> {
  int error;
};

// The operation's failure value with errno err (an error-number function
// returns err itself and leaves errno alone).
template <Sym S>
Outcome<Ret<S>> failed(int err) noexcept {
  using R = Ret<S>;
  constexpr Fail kFail = SymInfo<S>::kFail;
  if constexpr (kFail == Fail::kVoid) {
    return {err};
  } else if constexpr (kFail == Fail::kErrorNumber) {
    return {err, 0};
  } else if constexpr (kFail == Fail::kNull) {
    return {nullptr, err};
  } else if constexpr (kFail == Fail::kMapFailed) {
    return {MAP_FAILED, err};
  } else if constexpr (kFail == Fail::kZero) {
    return {0, err};
  } else {
    return {static_cast<R>(-1), err};
  }
}

// The operation's answer when the library does not serve it: fail closed
// (never hand our path or fd to the kernel as if it were local).
template <Sym S>
Outcome<Ret<S>> unserved() noexcept {
  return failed<S>(ENOTSUP);
}

// Handler<S>::call(args...) serves symbol S for a path or fd that is ours.
// THE place where the library plugs in: handlers.h specialises Handler for
// every symbol, in the engine with the definitions (serve_*.cpp), in the shim
// as forwarders to the engine's (engine_loader.h); a translation unit that
// sees neither gets this unserved one (the unit tests). The arguments are
// the entry point's own, except that every open spelling passes (dirfd,
// path, flags, mode) (__open_2 forms: no mode), fcntl passes a FcntlArg and
// ioctl its third argument as void*. Handlers report failure in
// Outcome::error and never touch errno; they must not throw, and should not
// block in a cancellation point while noexcept.
template <Sym S>
struct Handler {
  template <typename... A>
  static Outcome<Ret<S>> call(A...) noexcept {
    return unserved<S>();
  }
};

// Runs Handler<S> for an entry point: under the re-entry guard (everything it
// calls goes to libc), with the caller's errno preserved across it, and then
// sets errno once, from the outcome.
template <Sym S, typename... A>
Ret<S> serve(A... args) noexcept {
  using R = Ret<S>;
  Outcome<R> out = [&]() noexcept {
    ReentryGuard guard;
    ErrnoScope keep_errno;
    return Handler<S>::call(args...);
  }();
  if (out.error != 0) set_errno(out.error);
  if constexpr (!std::is_void_v<R>) return out.value;
}

}  // namespace objcache::preload::dispatch
