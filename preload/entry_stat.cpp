// SPDX-License-Identifier: Apache-2.0
// Entry points: stat in all its spellings (plain, LFS, statx, the pre-2.33
// __xstat ABI that old binaries still call) and statfs/statvfs.
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY int stat(const char* path, struct stat* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::stat>()(path, buf);
  return dispatch::serve<Sym::stat>(path, buf);
}

OBJCACHE_ENTRY int stat64(const char* path, struct stat64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::stat64>()(path, buf);
  return dispatch::serve<Sym::stat64>(path, buf);
}

OBJCACHE_ENTRY int lstat(const char* path, struct stat* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::lstat>()(path, buf);
  return dispatch::serve<Sym::lstat>(path, buf);
}

OBJCACHE_ENTRY int lstat64(const char* path, struct stat64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::lstat64>()(path, buf);
  return dispatch::serve<Sym::lstat64>(path, buf);
}

OBJCACHE_ENTRY int fstat(int fd, struct stat* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstat>()(fd, buf);
  return dispatch::serve<Sym::fstat>(fd, buf);
}

OBJCACHE_ENTRY int fstat64(int fd, struct stat64* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstat64>()(fd, buf);
  return dispatch::serve<Sym::fstat64>(fd, buf);
}

OBJCACHE_ENTRY int fstatat(int dirfd, const char* path, struct stat* buf, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::fstatat>()(dirfd, path, buf, flags);
  return dispatch::serve<Sym::fstatat>(dirfd, path, buf, flags);
}

OBJCACHE_ENTRY int fstatat64(int dirfd, const char* path, struct stat64* buf, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::fstatat64>()(dirfd, path, buf, flags);
  return dispatch::serve<Sym::fstatat64>(dirfd, path, buf, flags);
}

OBJCACHE_ENTRY int statx(int dirfd, const char* path, int flags, unsigned int mask,
                         struct statx* buf) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::statx>()(dirfd, path, flags, mask, buf);
  return dispatch::serve<Sym::statx>(dirfd, path, flags, mask, buf);
}

OBJCACHE_ENTRY int __xstat(int ver, const char* path, struct stat* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::__xstat>()(ver, path, buf);
  return dispatch::serve<Sym::__xstat>(ver, path, buf);
}

OBJCACHE_ENTRY int __xstat64(int ver, const char* path, struct stat64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::__xstat64>()(ver, path, buf);
  return dispatch::serve<Sym::__xstat64>(ver, path, buf);
}

OBJCACHE_ENTRY int __lxstat(int ver, const char* path, struct stat* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::__lxstat>()(ver, path, buf);
  return dispatch::serve<Sym::__lxstat>(ver, path, buf);
}

OBJCACHE_ENTRY int __lxstat64(int ver, const char* path, struct stat64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::__lxstat64>()(ver, path, buf);
  return dispatch::serve<Sym::__lxstat64>(ver, path, buf);
}

OBJCACHE_ENTRY int __fxstat(int ver, int fd, struct stat* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::__fxstat>()(ver, fd, buf);
  return dispatch::serve<Sym::__fxstat>(ver, fd, buf);
}

OBJCACHE_ENTRY int __fxstat64(int ver, int fd, struct stat64* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::__fxstat64>()(ver, fd, buf);
  return dispatch::serve<Sym::__fxstat64>(ver, fd, buf);
}

OBJCACHE_ENTRY int __fxstatat(int ver, int dirfd, const char* path, struct stat* buf,
                              int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::__fxstatat>()(ver, dirfd, path, buf, flags);
  return dispatch::serve<Sym::__fxstatat>(ver, dirfd, path, buf, flags);
}

OBJCACHE_ENTRY int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* buf,
                                int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::__fxstatat64>()(ver, dirfd, path, buf, flags);
  return dispatch::serve<Sym::__fxstatat64>(ver, dirfd, path, buf, flags);
}

OBJCACHE_ENTRY int statfs(const char* path, struct statfs* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::statfs>()(path, buf);
  return dispatch::serve<Sym::statfs>(path, buf);
}

OBJCACHE_ENTRY int statfs64(const char* path, struct statfs64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::statfs64>()(path, buf);
  return dispatch::serve<Sym::statfs64>(path, buf);
}

OBJCACHE_ENTRY int fstatfs(int fd, struct statfs* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstatfs>()(fd, buf);
  return dispatch::serve<Sym::fstatfs>(fd, buf);
}

OBJCACHE_ENTRY int fstatfs64(int fd, struct statfs64* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstatfs64>()(fd, buf);
  return dispatch::serve<Sym::fstatfs64>(fd, buf);
}

OBJCACHE_ENTRY int statvfs(const char* path, struct statvfs* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::statvfs>()(path, buf);
  return dispatch::serve<Sym::statvfs>(path, buf);
}

OBJCACHE_ENTRY int statvfs64(const char* path, struct statvfs64* buf) noexcept {
  if (pass_path(path)) return real::fn<Sym::statvfs64>()(path, buf);
  return dispatch::serve<Sym::statvfs64>(path, buf);
}

OBJCACHE_ENTRY int fstatvfs(int fd, struct statvfs* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstatvfs>()(fd, buf);
  return dispatch::serve<Sym::fstatvfs>(fd, buf);
}

OBJCACHE_ENTRY int fstatvfs64(int fd, struct statvfs64* buf) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fstatvfs64>()(fd, buf);
  return dispatch::serve<Sym::fstatvfs64>(fd, buf);
}
