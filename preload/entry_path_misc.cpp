// SPDX-License-Identifier: Apache-2.0
// Entry points: permission checks, links and canonical paths (with their
// fortified forms), extended attributes, and the current directory (a chdir
// into a mount makes later relative paths ours).
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY int access(const char* path, int mode) noexcept {
  if (pass_path(path)) return real::fn<Sym::access>()(path, mode);
  return dispatch::serve<Sym::access>(path, mode);
}

OBJCACHE_ENTRY int faccessat(int dirfd, const char* path, int mode, int flags) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::faccessat>()(dirfd, path, mode, flags);
  return dispatch::serve<Sym::faccessat>(dirfd, path, mode, flags);
}

OBJCACHE_ENTRY int euidaccess(const char* path, int mode) noexcept {
  if (pass_path(path)) return real::fn<Sym::euidaccess>()(path, mode);
  return dispatch::serve<Sym::euidaccess>(path, mode);
}

OBJCACHE_ENTRY int eaccess(const char* path, int mode) noexcept {
  if (pass_path(path)) return real::fn<Sym::eaccess>()(path, mode);
  return dispatch::serve<Sym::eaccess>(path, mode);
}

OBJCACHE_ENTRY ssize_t readlink(const char* path, char* buf, size_t len) noexcept {
  if (pass_path(path)) return real::fn<Sym::readlink>()(path, buf, len);
  return dispatch::serve<Sym::readlink>(path, buf, len);
}

OBJCACHE_ENTRY ssize_t readlinkat(int dirfd, const char* path, char* buf, size_t len) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::readlinkat>()(dirfd, path, buf, len);
  return dispatch::serve<Sym::readlinkat>(dirfd, path, buf, len);
}

OBJCACHE_ENTRY ssize_t __readlink_chk(const char* path, char* buf, size_t len,
                                      size_t buflen) noexcept {
  if (pass_path(path)) return real::fn<Sym::__readlink_chk>()(path, buf, len, buflen);
  return dispatch::serve<Sym::__readlink_chk>(path, buf, len, buflen);
}

OBJCACHE_ENTRY ssize_t __readlinkat_chk(int dirfd, const char* path, char* buf, size_t len,
                                        size_t buflen) noexcept {
  if (pass_at(dirfd, path)) return real::fn<Sym::__readlinkat_chk>()(dirfd, path, buf, len, buflen);
  return dispatch::serve<Sym::__readlinkat_chk>(dirfd, path, buf, len, buflen);
}

OBJCACHE_ENTRY char* realpath(const char* path, char* resolved) noexcept {
  if (pass_path(path)) return real::fn<Sym::realpath>()(path, resolved);
  return dispatch::serve<Sym::realpath>(path, resolved);
}

OBJCACHE_ENTRY char* __realpath_chk(const char* path, char* resolved, size_t resolvedlen) noexcept {
  if (pass_path(path)) return real::fn<Sym::__realpath_chk>()(path, resolved, resolvedlen);
  return dispatch::serve<Sym::__realpath_chk>(path, resolved, resolvedlen);
}

OBJCACHE_ENTRY char* canonicalize_file_name(const char* path) noexcept {
  if (pass_path(path)) return real::fn<Sym::canonicalize_file_name>()(path);
  return dispatch::serve<Sym::canonicalize_file_name>(path);
}

OBJCACHE_ENTRY ssize_t getxattr(const char* path, const char* name, void* value,
                                size_t size) noexcept {
  if (pass_path(path)) return real::fn<Sym::getxattr>()(path, name, value, size);
  return dispatch::serve<Sym::getxattr>(path, name, value, size);
}

OBJCACHE_ENTRY ssize_t lgetxattr(const char* path, const char* name, void* value,
                                 size_t size) noexcept {
  if (pass_path(path)) return real::fn<Sym::lgetxattr>()(path, name, value, size);
  return dispatch::serve<Sym::lgetxattr>(path, name, value, size);
}

OBJCACHE_ENTRY ssize_t fgetxattr(int fd, const char* name, void* value, size_t size) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::fgetxattr>()(fd, name, value, size);
  return dispatch::serve<Sym::fgetxattr>(fd, name, value, size);
}

OBJCACHE_ENTRY ssize_t listxattr(const char* path, char* list, size_t size) noexcept {
  if (pass_path(path)) return real::fn<Sym::listxattr>()(path, list, size);
  return dispatch::serve<Sym::listxattr>(path, list, size);
}

OBJCACHE_ENTRY ssize_t llistxattr(const char* path, char* list, size_t size) noexcept {
  if (pass_path(path)) return real::fn<Sym::llistxattr>()(path, list, size);
  return dispatch::serve<Sym::llistxattr>(path, list, size);
}

OBJCACHE_ENTRY ssize_t flistxattr(int fd, char* list, size_t size) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::flistxattr>()(fd, list, size);
  return dispatch::serve<Sym::flistxattr>(fd, list, size);
}

// chdir and fchdir come to the engine whenever it is loaded (or the target
// may be ours): it keeps the current directory it resolves relative paths
// against; before that the shim keeps its own copy (pass_chdir).
OBJCACHE_ENTRY int chdir(const char* path) noexcept {
  if (in_shim() || !dispatch::chdir_is_ours(path)) return dispatch::pass_chdir(path);
  return dispatch::serve<Sym::chdir>(path);
}

OBJCACHE_ENTRY int fchdir(int fd) noexcept {
  if (in_shim() || !dispatch::fchdir_is_ours()) return dispatch::pass_fchdir(fd);
  return dispatch::serve<Sym::fchdir>(fd);
}

OBJCACHE_ENTRY char* getcwd(char* buf, size_t size) noexcept {
  if (in_shim() || !dispatch::cwd_is_ours()) return real::fn<Sym::getcwd>()(buf, size);
  return dispatch::serve<Sym::getcwd>(buf, size);
}

OBJCACHE_ENTRY char* __getcwd_chk(char* buf, size_t size, size_t buflen) noexcept {
  if (in_shim() || !dispatch::cwd_is_ours()) {
    return real::fn<Sym::__getcwd_chk>()(buf, size, buflen);
  }
  return dispatch::serve<Sym::__getcwd_chk>(buf, size, buflen);
}
