// SPDX-License-Identifier: Apache-2.0
// Entry points: reading and seeking, LFS and fortified spellings (the
// __*_chk forms keep their buffer-size check in the real function), and the
// read-ahead hints.
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY ssize_t read(int fd, void* buf, size_t n) {
  if (pass_fd(fd)) return real::fn<Sym::read>()(fd, buf, n);
  return dispatch::serve<Sym::read>(fd, buf, n);
}

OBJCACHE_ENTRY ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (pass_fd(fd)) return real::fn<Sym::__read_chk>()(fd, buf, n, buflen);
  return dispatch::serve<Sym::__read_chk>(fd, buf, n, buflen);
}

OBJCACHE_ENTRY ssize_t pread(int fd, void* buf, size_t n, off_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pread>()(fd, buf, n, offset);
  return dispatch::serve<Sym::pread>(fd, buf, n, offset);
}

OBJCACHE_ENTRY ssize_t pread64(int fd, void* buf, size_t n, off64_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pread64>()(fd, buf, n, offset);
  return dispatch::serve<Sym::pread64>(fd, buf, n, offset);
}

OBJCACHE_ENTRY ssize_t __pread_chk(int fd, void* buf, size_t n, off_t offset, size_t buflen) {
  if (pass_fd(fd)) return real::fn<Sym::__pread_chk>()(fd, buf, n, offset, buflen);
  return dispatch::serve<Sym::__pread_chk>(fd, buf, n, offset, buflen);
}

OBJCACHE_ENTRY ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t offset, size_t buflen) {
  if (pass_fd(fd)) return real::fn<Sym::__pread64_chk>()(fd, buf, n, offset, buflen);
  return dispatch::serve<Sym::__pread64_chk>(fd, buf, n, offset, buflen);
}

OBJCACHE_ENTRY ssize_t readv(int fd, const struct iovec* iov, int iovcnt) {
  if (pass_fd(fd)) return real::fn<Sym::readv>()(fd, iov, iovcnt);
  return dispatch::serve<Sym::readv>(fd, iov, iovcnt);
}

OBJCACHE_ENTRY ssize_t preadv(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::preadv>()(fd, iov, iovcnt, offset);
  return dispatch::serve<Sym::preadv>(fd, iov, iovcnt, offset);
}

OBJCACHE_ENTRY ssize_t preadv64(int fd, const struct iovec* iov, int iovcnt, off64_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::preadv64>()(fd, iov, iovcnt, offset);
  return dispatch::serve<Sym::preadv64>(fd, iov, iovcnt, offset);
}

OBJCACHE_ENTRY ssize_t preadv2(int fd, const struct iovec* iov, int iovcnt, off_t offset,
                               int flags) {
  if (pass_fd(fd)) return real::fn<Sym::preadv2>()(fd, iov, iovcnt, offset, flags);
  return dispatch::serve<Sym::preadv2>(fd, iov, iovcnt, offset, flags);
}

OBJCACHE_ENTRY ssize_t preadv64v2(int fd, const struct iovec* iov, int iovcnt, off64_t offset,
                                  int flags) {
  if (pass_fd(fd)) return real::fn<Sym::preadv64v2>()(fd, iov, iovcnt, offset, flags);
  return dispatch::serve<Sym::preadv64v2>(fd, iov, iovcnt, offset, flags);
}

OBJCACHE_ENTRY off_t lseek(int fd, off_t offset, int whence) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::lseek>()(fd, offset, whence);
  return dispatch::serve<Sym::lseek>(fd, offset, whence);
}

OBJCACHE_ENTRY off64_t lseek64(int fd, off64_t offset, int whence) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::lseek64>()(fd, offset, whence);
  return dispatch::serve<Sym::lseek64>(fd, offset, whence);
}

OBJCACHE_ENTRY int posix_fadvise(int fd, off_t offset, off_t len, int advice) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::posix_fadvise>()(fd, offset, len, advice);
  return dispatch::serve<Sym::posix_fadvise>(fd, offset, len, advice);
}

OBJCACHE_ENTRY int posix_fadvise64(int fd, off64_t offset, off64_t len, int advice) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::posix_fadvise64>()(fd, offset, len, advice);
  return dispatch::serve<Sym::posix_fadvise64>(fd, offset, len, advice);
}

OBJCACHE_ENTRY ssize_t readahead(int fd, off64_t offset, size_t count) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::readahead>()(fd, offset, count);
  return dispatch::serve<Sym::readahead>(fd, offset, count);
}
