// SPDX-License-Identifier: Apache-2.0
// What objcache does when the process exits (std::exit, or a return from
// main): files a program left open for writing are uploaded first, then
// background work stops and lets go of its requests (Flush before Quiesce,
// whatever order they were added in). One atexit handler, registered again
// by every add(): add hooks only after the store (libcurl, OpenSSL) of what
// they use exists, so they run before those libraries' own exit cleanups
// (atexit runs last-registered first). A forked child inherits the hooks:
// each hook checks whose state it touches.
#pragma once

#include <functional>

namespace objcache::exit_hooks {

enum class Phase { Flush = 0, Quiesce = 1 };

void add(Phase phase, std::function<void()> fn);

}  // namespace objcache::exit_hooks
