// SPDX-License-Identifier: Apache-2.0
// Entry points: the open family, LFS spellings and the fortified forms
// (__open_2 & co. are what _FORTIFY_SOURCE builds call, e.g. GNU tar's
// __openat_2). mode is read only when O_CREAT or O_TMPFILE asks for it.
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY int open(const char* path, int flags, ...) {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  if (pass_path(path)) return call_with_mode(real::fn<Sym::open>(), mode, path, flags);
  return dispatch::serve<Sym::open>(AT_FDCWD, path, flags, mode.mode);
}

OBJCACHE_ENTRY int open64(const char* path, int flags, ...) {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  if (pass_path(path)) return call_with_mode(real::fn<Sym::open64>(), mode, path, flags);
  return dispatch::serve<Sym::open64>(AT_FDCWD, path, flags, mode.mode);
}

OBJCACHE_ENTRY int openat(int dirfd, const char* path, int flags, ...) {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  if (pass_at(dirfd, path)) {
    return call_with_mode(real::fn<Sym::openat>(), mode, dirfd, path, flags);
  }
  return dispatch::serve<Sym::openat>(dirfd, path, flags, mode.mode);
}

OBJCACHE_ENTRY int openat64(int dirfd, const char* path, int flags, ...) {
  OBJCACHE_PRELOAD_READ_MODE(flags, mode);
  if (pass_at(dirfd, path)) {
    return call_with_mode(real::fn<Sym::openat64>(), mode, dirfd, path, flags);
  }
  return dispatch::serve<Sym::openat64>(dirfd, path, flags, mode.mode);
}

OBJCACHE_ENTRY int __open_2(const char* path, int flags) {
  if (pass_path(path)) return real::fn<Sym::__open_2>()(path, flags);
  return dispatch::serve<Sym::__open_2>(AT_FDCWD, path, flags);
}

OBJCACHE_ENTRY int __open64_2(const char* path, int flags) {
  if (pass_path(path)) return real::fn<Sym::__open64_2>()(path, flags);
  return dispatch::serve<Sym::__open64_2>(AT_FDCWD, path, flags);
}

OBJCACHE_ENTRY int __openat_2(int dirfd, const char* path, int flags) {
  if (pass_at(dirfd, path)) return real::fn<Sym::__openat_2>()(dirfd, path, flags);
  return dispatch::serve<Sym::__openat_2>(dirfd, path, flags);
}

OBJCACHE_ENTRY int __openat64_2(int dirfd, const char* path, int flags) {
  if (pass_at(dirfd, path)) return real::fn<Sym::__openat64_2>()(dirfd, path, flags);
  return dispatch::serve<Sym::__openat64_2>(dirfd, path, flags);
}

OBJCACHE_ENTRY int creat(const char* path, mode_t mode) {
  if (pass_path(path)) return real::fn<Sym::creat>()(path, mode);
  return dispatch::serve<Sym::creat>(path, mode);
}

OBJCACHE_ENTRY int creat64(const char* path, mode_t mode) {
  if (pass_path(path)) return real::fn<Sym::creat64>()(path, mode);
  return dispatch::serve<Sym::creat64>(path, mode);
}
