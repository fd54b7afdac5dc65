// SPDX-License-Identifier: Apache-2.0
// Who we are, cheaply: the pid and a fork generation kept current by a
// pthread_atfork child handler, so hot paths learn "am I a forked child?"
// from one relaxed load instead of a getpid() system call.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace objcache::proc {

// This process's pid (no system call).
pid_t self();
// Changes in every forked child. Objects that keep per-process state (a
// stats slot, threads, connections) compare it to rebuild after a fork.
std::uint64_t fork_generation();
// false only when pid certainly has exited: kill(pid, 0) says ESRCH, or
// /proc shows a zombie (exited, not yet reaped by its parent).
bool alive(pid_t pid);

}  // namespace objcache::proc
