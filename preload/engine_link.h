// SPDX-License-Identifier: Apache-2.0
// The one interface between the two halves of the shim: the preloaded
// libobjcache_preload.so (entry points, real-symbol table, fd table,
// dispatch, mount prefixes; libc only) and the engine,
// libobjcache_preload_engine.so beside it (handlers, library, libcache with
// curl and OpenSSL), which the shim dlopens on the first call that touches
// a mount. The shim lends the engine its state through ShimState; the
// engine hands back its handlers in EngineOps, through the engine's one
// exported function. Must not: grow a second fd table, real-symbol table or
// re-entry guard in the engine (they are all the shim's, reached through
// these pointers).
#pragma once

#include <dirent.h>

#include <atomic>

#include "fd_table.h"
#include "real.h"

namespace objcache::preload::engine {

// Bumped whenever either struct changes: a shim and an engine from two
// builds refuse each other (the mounted calls then fail with EIO).
inline constexpr unsigned kAbi = 1;

// The engine's file name; the shim looks for it in its own directory.
inline constexpr const char* kFileName = "libobjcache_preload_engine.so";
// The engine's one export.
inline constexpr const char* kInitName = "objcache_preload_engine_init";

// What the shim lends the engine. Every pointer lives as long as the
// process.
struct ShimState {
  unsigned abi;
  std::atomic<void*>* real_slots;      // real::g_slots, kSymCount of them
  void* (*resolve_slow)(Sym) noexcept;  // real::resolve_slow
  const char* (*real_name)(Sym) noexcept;
  unsigned* (*depth)() noexcept;       // this thread's re-entry depth (guard.h)
  FdTable* fds;                        // dispatch::g_fds
  std::atomic<bool>* mounts_active;    // dispatch::g_mounts_active
  std::atomic<long>* dirs_live;        // dispatch::g_dirs_live
  bool (*register_dir)(const DIR*) noexcept;
  bool (*unregister_dir)(const DIR*) noexcept;
  bool (*dir_is_ours)(const DIR*) noexcept;
};

// What the engine gives back.
struct EngineOps {
  // Handler<S>::call for each symbol, as Handler<S>::Fn (handlers.h).
  void* handlers[kSymCount];
  // The exact ownership tests (library.h's resolve): a path, absolute or
  // relative to the (virtual) current directory; the virtual cwd.
  bool (*path_is_ours)(const char* path) noexcept;
  bool (*cwd_is_ours)() noexcept;
};

// The engine's export: checks shim->abi, keeps shim, reads the
// configuration with the full parser (a bad one is reported on stderr with
// file, line and key, and turns *shim->mounts_active off), resumes what an
// exec handed over, and fills *ops. 0, or an errno (the engine is then
// unusable).
using InitFn = int (*)(const ShimState* shim, EngineOps* ops) noexcept;

}  // namespace objcache::preload::engine
