// SPDX-License-Identifier: Apache-2.0
// Entry points: the calls that change names and attributes (unlink, mkdir,
// rmdir, rename, truncate by path, links, modes, owners, times, extended
// attributes). Under a mount they never reach the kernel: a read-only
// mount answers EROFS, a writable one changes the bucket or accepts the
// call as a no-op (see serve_change.cpp).
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY int truncate(const char* path, off_t len) noexcept {
  if (pass_path(path)) return real::fn<Sym::truncate>()(path, len);
  return dispatch::serve<Sym::truncate>(path, len);
}

OBJCACHE_ENTRY int truncate64(const char* path, off64_t len) noexcept {
  if (pass_path(path)) return real::fn<Sym::truncate64>()(path, len);
  return dispatch::serve<Sym::truncate64>(path, len);
}

OBJCACHE_ENTRY int unlink(const char* path) noexcept {
  if (pass_path(path)) return real::fn<Sym::unlink>()(path);
  return dispatch::serve<Sym::unlink>(path);
}

OBJCACHE_ENTRY int unlinkat(int dirfd, const char* path, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::unlinkat>()(dirfd, path, flags);
  return dispatch::serve<Sym::unlinkat>(dirfd, path, flags);
}

OBJCACHE_ENTRY int mkdir(const char* path, mode_t mode) noexcept {
  if (pass_path(path)) return real::fn<Sym::mkdir>()(path, mode);
  return dispatch::serve<Sym::mkdir>(path, mode);
}

OBJCACHE_ENTRY int mkdirat(int dirfd, const char* path, mode_t mode) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::mkdirat>()(dirfd, path, mode);
  return dispatch::serve<Sym::mkdirat>(dirfd, path, mode);
}

OBJCACHE_ENTRY int rmdir(const char* path) noexcept {
  if (pass_path(path)) return real::fn<Sym::rmdir>()(path);
  return dispatch::serve<Sym::rmdir>(path);
}

OBJCACHE_ENTRY int rename(const char* from, const char* to) noexcept {
  if (pass_paths(from, to)) return real::fn<Sym::rename>()(from, to);
  return dispatch::serve<Sym::rename>(from, to);
}

OBJCACHE_ENTRY int renameat(int fromfd, const char* from, int tofd, const char* to) noexcept {
  if (pass_ats(fromfd, from, tofd, to)) return real::fn<Sym::renameat>()(fromfd, from, tofd, to);
  return dispatch::serve<Sym::renameat>(fromfd, from, tofd, to);
}

OBJCACHE_ENTRY int renameat2(int fromfd, const char* from, int tofd, const char* to,
                             unsigned int flags) noexcept {
  if (pass_ats(fromfd, from, tofd, to)) return real::fn<Sym::renameat2>()(fromfd, from, tofd, to, flags);
  return dispatch::serve<Sym::renameat2>(fromfd, from, tofd, to, flags);
}

OBJCACHE_ENTRY int link(const char* from, const char* to) noexcept {
  if (pass_paths(from, to)) return real::fn<Sym::link>()(from, to);
  return dispatch::serve<Sym::link>(from, to);
}

OBJCACHE_ENTRY int linkat(int fromfd, const char* from, int tofd, const char* to, int flags) noexcept {
  if (pass_ats(fromfd, from, tofd, to)) return real::fn<Sym::linkat>()(fromfd, from, tofd, to, flags);
  return dispatch::serve<Sym::linkat>(fromfd, from, tofd, to, flags);
}

// The target of a symbolic link is only text: the link's own path decides.
OBJCACHE_ENTRY int symlink(const char* target, const char* path) noexcept {
  if (pass_path(path)) return real::fn<Sym::symlink>()(target, path);
  return dispatch::serve<Sym::symlink>(target, path);
}

OBJCACHE_ENTRY int symlinkat(const char* target, int dirfd, const char* path) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::symlinkat>()(target, dirfd, path);
  return dispatch::serve<Sym::symlinkat>(target, dirfd, path);
}

// utimensat(fd, NULL, ...) names fd itself (futimens is that call in glibc).
OBJCACHE_ENTRY int utimensat(int dirfd, const char* path, const struct timespec times[2],
                             int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::utimensat>()(dirfd, path, times, flags);
  return dispatch::serve<Sym::utimensat>(dirfd, path, times, flags);
}

OBJCACHE_ENTRY int futimens(int fd, const struct timespec times[2]) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::futimens>()(fd, times);
  return dispatch::serve<Sym::futimens>(fd, times);
}

OBJCACHE_ENTRY int utimes(const char* path, const struct timeval times[2]) noexcept {
  if (pass_path(path)) return real::fn<Sym::utimes>()(path, times);
  return dispatch::serve<Sym::utimes>(path, times);
}

OBJCACHE_ENTRY int utime(const char* path, const struct utimbuf* times) noexcept {
  if (pass_path(path)) return real::fn<Sym::utime>()(path, times);
  return dispatch::serve<Sym::utime>(path, times);
}

OBJCACHE_ENTRY int lutimes(const char* path, const struct timeval times[2]) noexcept {
  if (pass_path(path)) return real::fn<Sym::lutimes>()(path, times);
  return dispatch::serve<Sym::lutimes>(path, times);
}

OBJCACHE_ENTRY int futimes(int fd, const struct timeval times[2]) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::futimes>()(fd, times);
  return dispatch::serve<Sym::futimes>(fd, times);
}

OBJCACHE_ENTRY int chmod(const char* path, mode_t mode) noexcept {
  if (pass_path(path)) return real::fn<Sym::chmod>()(path, mode);
  return dispatch::serve<Sym::chmod>(path, mode);
}

OBJCACHE_ENTRY int fchmod(int fd, mode_t mode) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fchmod>()(fd, mode);
  return dispatch::serve<Sym::fchmod>(fd, mode);
}

OBJCACHE_ENTRY int fchmodat(int dirfd, const char* path, mode_t mode, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::fchmodat>()(dirfd, path, mode, flags);
  return dispatch::serve<Sym::fchmodat>(dirfd, path, mode, flags);
}

OBJCACHE_ENTRY int chown(const char* path, uid_t uid, gid_t gid) noexcept {
  if (pass_path(path)) return real::fn<Sym::chown>()(path, uid, gid);
  return dispatch::serve<Sym::chown>(path, uid, gid);
}

OBJCACHE_ENTRY int lchown(const char* path, uid_t uid, gid_t gid) noexcept {
  if (pass_path(path)) return real::fn<Sym::lchown>()(path, uid, gid);
  return dispatch::serve<Sym::lchown>(path, uid, gid);
}

OBJCACHE_ENTRY int fchown(int fd, uid_t uid, gid_t gid) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fchown>()(fd, uid, gid);
  return dispatch::serve<Sym::fchown>(fd, uid, gid);
}

OBJCACHE_ENTRY int fchownat(int dirfd, const char* path, uid_t uid, gid_t gid, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::fchownat>()(dirfd, path, uid, gid, flags);
  return dispatch::serve<Sym::fchownat>(dirfd, path, uid, gid, flags);
}

OBJCACHE_ENTRY int setxattr(const char* path, const char* name, const void* value, size_t size,
                            int flags) noexcept {
  if (pass_path(path)) return real::fn<Sym::setxattr>()(path, name, value, size, flags);
  return dispatch::serve<Sym::setxattr>(path, name, value, size, flags);
}

OBJCACHE_ENTRY int lsetxattr(const char* path, const char* name, const void* value, size_t size,
                             int flags) noexcept {
  if (pass_path(path)) return real::fn<Sym::lsetxattr>()(path, name, value, size, flags);
  return dispatch::serve<Sym::lsetxattr>(path, name, value, size, flags);
}

OBJCACHE_ENTRY int fsetxattr(int fd, const char* name, const void* value, size_t size,
                             int flags) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fsetxattr>()(fd, name, value, size, flags);
  return dispatch::serve<Sym::fsetxattr>(fd, name, value, size, flags);
}

OBJCACHE_ENTRY int removexattr(const char* path, const char* name) noexcept {
  if (pass_path(path)) return real::fn<Sym::removexattr>()(path, name);
  return dispatch::serve<Sym::removexattr>(path, name);
}

OBJCACHE_ENTRY int lremovexattr(const char* path, const char* name) noexcept {
  if (pass_path(path)) return real::fn<Sym::lremovexattr>()(path, name);
  return dispatch::serve<Sym::lremovexattr>(path, name);
}

OBJCACHE_ENTRY int fremovexattr(int fd, const char* name) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fremovexattr>()(fd, name);
  return dispatch::serve<Sym::fremovexattr>(fd, name);
}
