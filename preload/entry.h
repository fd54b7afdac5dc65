// SPDX-License-Identifier: Apache-2.0
// Shared by the entry_*.cpp files: the export macro and the pass-through
// tests each entry point starts with. An entry point is three lines: if the
// guard is up or the object is not ours, call the real function with the
// arguments untouched; else hand the call to dispatch::serve. Must not hold
// logic of its own.
//
// Exception specifications follow glibc's headers exactly (C++ requires a
// definition to match its declaration): __THROW functions are noexcept;
// cancellation points (open, read, close, fcntl, fclose...) are not, because
// pthread_cancel unwinds through them with a forced-unwind exception and a
// noexcept frame would turn a thread cancellation into std::terminate. No
// exception of ours can escape either way: dispatch::serve and everything
// below it are noexcept.
#pragma once

#include <dirent.h>
#include <stdio.h>

#include "dispatch.h"
#include "handlers.h"
#include "guard.h"
#include "real.h"
#include "varargs.h"

// Gives an entry point default visibility (the folder builds with hidden
// visibility; exports.map then keeps only libc names global).
#define OBJCACHE_ENTRY extern "C" __attribute__((visibility("default")))

namespace objcache::preload {

inline bool pass_path(const char* path) noexcept {
  return in_shim() || !dispatch::path_is_ours(path);
}
inline bool pass_at(int dirfd, const char* path) noexcept {
  return in_shim() || !dispatch::at_is_ours(dirfd, path);
}
inline bool pass_fd(int fd) noexcept { return in_shim() || !dispatch::fd_is_ours(fd); }
// rename and link: ours when either end is (a mount to a local path is EXDEV).
inline bool pass_paths(const char* a, const char* b) noexcept {
  return in_shim() || (!dispatch::path_is_ours(a) && !dispatch::path_is_ours(b));
}
inline bool pass_ats(int da, const char* a, int db, const char* b) noexcept {
  return in_shim() || (!dispatch::at_is_ours(da, a) && !dispatch::at_is_ours(db, b));
}
inline bool pass_fds(int a, int b) noexcept {
  return in_shim() || (!dispatch::fd_is_ours(a) && !dispatch::fd_is_ours(b));
}
inline bool pass_dir(const DIR* dir) noexcept { return in_shim() || !dispatch::dir_is_ours(dir); }
inline bool pass_stream(FILE* stream) noexcept {
  return in_shim() || !dispatch::stream_is_ours(stream);
}

}  // namespace objcache::preload
