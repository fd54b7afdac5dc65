// SPDX-License-Identifier: Apache-2.0
// The engine's side of engine_link.h: its one export, which takes the
// shim's state (real-symbol table, re-entry guard, fd table, DIR registry,
// mounts flag) and hands back the handlers; and the engine's halves of
// dispatch.h's slow tests (the exact path test over the library's mount
// table). Everything the engine does to those tables is done to the
// shim's.
#include <stdio.h>

#include <type_traits>

#include "dispatch.h"
#include "engine_link.h"
#include "guard.h"
#include "handlers.h"
#include "handover.h"
#include "library.h"
#include "real.h"

namespace objcache::preload {

namespace {

// Until init: a depth of the engine's own (never the case once the shim has
// called init, which comes before any other use of the engine).
unsigned* own_depth() noexcept {
  static thread_local unsigned depth = 0;
  return &depth;
}

const engine::ShimState* g_state = nullptr;  // set once by init

}  // namespace

unsigned* (*g_shim_depth)() noexcept = &own_depth;

namespace real {

std::atomic<void*>* g_slots = nullptr;

void* resolve_slow(Sym s) noexcept { return g_state->resolve_slow(s); }
const char* name(Sym s) noexcept { return g_state->real_name(s); }

}  // namespace real

namespace dispatch {

ShimRefs g_shim = {};

bool engine_loaded() noexcept { return true; }
bool engine_loaded_after_settling() noexcept { return true; }

// The exact test (the shim asks it once its prefixes say "maybe").
bool path_is_ours_slow(const char* path) noexcept {
  ReentryGuard guard;
  ErrnoScope keep_errno;
  // An absolute path without "..": the allocation-free, exact pre-check.
  if (path[0] == '/' && lib::mounts().maybe_ours(path) == false) {
    bool dotdot = false;
    for (const char* p = path; *p != '\0' && !dotdot; ++p) {
      dotdot = p[0] == '.' && p[1] == '.' && (p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/');
    }
    if (!dotdot) return false;
  }
  const lib::Target t = lib::resolve(path);
  return t.where.ours() || t.is_above();
}

bool dir_is_ours_slow(const DIR* dir) noexcept { return g_state->dir_is_ours(dir); }
bool register_dir(const DIR* dir) noexcept { return g_state->register_dir(dir); }
bool unregister_dir(const DIR* dir) noexcept { return g_state->unregister_dir(dir); }

bool stream_is_ours_slow(FILE* stream) noexcept {
  // fileno sets errno (EBADF) for streams without an fd (fmemopen, cookies).
  ErrnoScope keep_errno;
  return fd_is_ours(fileno(stream));
}

bool cwd_is_ours_slow() noexcept { return lib::has_virtual_cwd(); }

}  // namespace dispatch

namespace {

bool exact_path_is_ours(const char* path) noexcept {
  return path != nullptr && dispatch::mounts_active().load(std::memory_order_relaxed) &&
         dispatch::path_is_ours_slow(path);
}

bool exact_cwd_is_ours() noexcept { return lib::has_virtual_cwd(); }

// static_cast checks each handler has exactly the type the shim calls it
// through (Handler<S>::Fn, handlers.h). A symbol the shim only calls
// (munmap) has no handler.
template <Sym S>
void fill_one(engine::EngineOps* ops) noexcept {
  using H = dispatch::Handler<S>;
  if constexpr (requires { typename H::Fn; }) {
    ops->handlers[static_cast<unsigned>(S)] = reinterpret_cast<void*>(static_cast<typename H::Fn>(&H::call));
  }
}

void fill(engine::EngineOps* ops) noexcept {
#define OBJCACHE_PRELOAD_FILL(name, fail) fill_one<Sym::name>(ops);
  OBJCACHE_PRELOAD_REAL_SYMBOLS(OBJCACHE_PRELOAD_FILL)
#undef OBJCACHE_PRELOAD_FILL
  ops->path_is_ours = &exact_path_is_ours;
  ops->cwd_is_ours = &exact_cwd_is_ours;
}

}  // namespace
}  // namespace objcache::preload

extern "C" __attribute__((visibility("default"))) int objcache_preload_engine_init(
    const objcache::preload::engine::ShimState* shim, objcache::preload::engine::EngineOps* ops) noexcept {
  using namespace objcache::preload;
  if (shim == nullptr || ops == nullptr || shim->abi != engine::kAbi) return EPROTO;
  g_state = shim;
  real::g_slots = shim->real_slots;
  g_shim_depth = shim->depth;
  dispatch::g_shim = dispatch::ShimRefs{shim->fds, shim->mounts_active, shim->dirs_live};
  fill(ops);
  // The full parse: a configuration the shim's scanner could not vouch for
  // is reported here, exactly as it always was.
  if (!lib::load()) {
    shim->mounts_active->store(false, std::memory_order_release);
    return 0;
  }
  // Files the previous image of this process was writing (a shell's
  // `cmd > file`).
  handover::resume();
  return 0;
}
