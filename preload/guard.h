// SPDX-License-Identifier: Apache-2.0
// The re-entry guard: while this thread is inside the shim's own work (symbol
// resolution, dispatch, later the library with libcurl and OpenSSL), every
// interposed call it makes goes straight to libc. Must not allocate, take a
// lock or make a call: it is read at the top of every entry point.
#pragma once

namespace objcache::preload {

#ifndef OBJCACHE_PRELOAD_ENGINE
// Depth of shim-internal work on this thread (libfaketime's dont_fake, as a
// depth so nested scopes compose).
//
// initial-exec TLS: the variable lives in the static TLS block, so reading it
// is one %fs-relative load with no call to __tls_get_addr, which for the
// dynamic model may allocate (malloc -> an interposing allocator -> open ->
// this guard: recursion). A preloaded object always gets static TLS; a
// dlopen'ed one uses the few bytes glibc reserves for that. The block exists
// from the moment the thread does (ld.so sets it up for the main thread
// before any constructor runs, pthread_create before the start routine), so
// it is safe at every point where an interposed call can happen. constinit:
// no dynamic initialisation, hence no TLS wrapper function either.
inline constinit thread_local unsigned t_shim_depth
    __attribute__((tls_model("initial-exec"))) = 0;

// True when the current call was made by the shim itself (or by code it
// called): pass it through untouched.
inline bool in_shim() noexcept { return t_shim_depth != 0; }

// Marks a scope of shim-internal work. A signal handler that runs inside the
// scope sees in_shim() too and is passed through; the counter is only ever
// touched by its own thread, so no atomics are needed.
class [[nodiscard]] ReentryGuard {
 public:
  ReentryGuard() noexcept { ++t_shim_depth; }
  ~ReentryGuard() { --t_shim_depth; }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;
};

// For the engine (engine_link.h): the address of this thread's depth.
unsigned* shim_depth() noexcept;
inline unsigned& depth_ref() noexcept { return t_shim_depth; }
#else
// In the engine, the guard is the shim's: an interposed call our code makes
// reaches the shim's entry points, which read the shim's depth. The engine
// asks the shim for the calling thread's counter (one call, no TLS of the
// engine's own on this path).
extern unsigned* (*g_shim_depth)() noexcept;  // set by the engine's init
inline bool in_shim() noexcept { return *g_shim_depth() != 0; }
inline unsigned& depth_ref() noexcept { return *g_shim_depth(); }
class [[nodiscard]] ReentryGuard {
 public:
  ReentryGuard() noexcept : depth_(g_shim_depth()) { ++*depth_; }
  ~ReentryGuard() { --*depth_; }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;

 private:
  unsigned* depth_;
};
#endif

}  // namespace objcache::preload
