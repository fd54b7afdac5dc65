// SPDX-License-Identifier: Apache-2.0
// errno discipline for the shim: the program's errno survives everything the
// shim does on its own behalf, and this header holds the only two writes to
// errno in preload/ (a test greps for others). Must not allocate or call any
// name the shim exports.
#pragma once

#include <cerrno>

namespace objcache::preload {

// Gives errno a new value. Failures travel as values (an errno number in an
// Outcome, see dispatch.h) until they reach this one function.
inline void set_errno(int err) noexcept { errno = err; }

// Saves errno when made and puts it back when destroyed, so internal calls
// (dlsym, fileno, later the library, libcurl, OpenSSL) never leak their errno
// into the program's.
class ErrnoScope {
 public:
  ErrnoScope() noexcept : saved_(errno) {}
  ~ErrnoScope() { errno = saved_; }
  ErrnoScope(const ErrnoScope&) = delete;
  ErrnoScope& operator=(const ErrnoScope&) = delete;

 private:
  int saved_;
};

}  // namespace objcache::preload
