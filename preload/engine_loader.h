// SPDX-License-Identifier: Apache-2.0
// The shim's side of engine_link.h: loads the engine (dlopen of the file
// beside the shim) once per process, on the first call that touches a
// mount, and forwards served calls to its handlers. Thread-safe (one thread
// loads, the others wait for it), fork-safe (fork waits for a load in
// flight; a vfork child never loads), and never loads in what looks like a
// signal handler: that call fails with EAGAIN and the next one outside the
// handler loads. Must not: be reached by a process that touches no mount.
#pragma once

#include <atomic>

#include "dispatch.h"
#include "engine_link.h"

namespace objcache::preload::engine {

// The engine's handlers once it is loaded and initialised, else nullptr.
const EngineOps* ready() noexcept;

// ready(), loading the engine first if no one has yet. nullptr when it
// cannot be had now; *error then says why: EIO (missing, refused, failed
// to start; said once on stderr), EAGAIN (first use from a signal handler,
// or from a vfork child). Call under the re-entry guard.
const EngineOps* get(int* error) noexcept;

// Before fork: waits while another thread is loading the engine, so the
// child never sees half a load.
void settle() noexcept;

// From the shim's constructor: fork bookkeeping; and, when `eager`, loads
// the engine now (a configuration the prefix scanner cannot vouch for, or
// state an exec handed over).
void start(bool eager) noexcept;

}  // namespace objcache::preload::engine

namespace objcache::preload::dispatch {

// A served call, in the shim: the engine's Handler<S> (Fn: its type), or
// the operation's failure with the errno engine::get gave.
template <Sym S, typename Fn, typename... A>
Outcome<Ret<S>> forward(A... args) noexcept {
  int err = 0;
  const engine::EngineOps* ops = engine::get(&err);
  if (ops == nullptr) return failed<S>(err);
  return reinterpret_cast<Fn>(ops->handlers[static_cast<unsigned>(S)])(args...);
}

}  // namespace objcache::preload::dispatch
