// SPDX-License-Identifier: Apache-2.0
// Entry points: writing through an fd (plain, LFS, vectored), truncating,
// syncing and allocating. On an fd of ours these reach a staged file (a
// writable mount) or answer as a read-only file would.
#include "entry.h"

using namespace objcache::preload;

OBJCACHE_ENTRY ssize_t write(int fd, const void* buf, size_t n) {
  if (pass_fd(fd)) return real::fn<Sym::write>()(fd, buf, n);
  return dispatch::serve<Sym::write>(fd, buf, n);
}

OBJCACHE_ENTRY ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pwrite>()(fd, buf, n, offset);
  return dispatch::serve<Sym::pwrite>(fd, buf, n, offset);
}

OBJCACHE_ENTRY ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pwrite64>()(fd, buf, n, offset);
  return dispatch::serve<Sym::pwrite64>(fd, buf, n, offset);
}

OBJCACHE_ENTRY ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (pass_fd(fd)) return real::fn<Sym::writev>()(fd, iov, iovcnt);
  return dispatch::serve<Sym::writev>(fd, iov, iovcnt);
}

OBJCACHE_ENTRY ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pwritev>()(fd, iov, iovcnt, offset);
  return dispatch::serve<Sym::pwritev>(fd, iov, iovcnt, offset);
}

OBJCACHE_ENTRY ssize_t pwritev64(int fd, const struct iovec* iov, int iovcnt, off64_t offset) {
  if (pass_fd(fd)) return real::fn<Sym::pwritev64>()(fd, iov, iovcnt, offset);
  return dispatch::serve<Sym::pwritev64>(fd, iov, iovcnt, offset);
}

OBJCACHE_ENTRY ssize_t pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset,
                                int flags) {
  if (pass_fd(fd)) return real::fn<Sym::pwritev2>()(fd, iov, iovcnt, offset, flags);
  return dispatch::serve<Sym::pwritev2>(fd, iov, iovcnt, offset, flags);
}

OBJCACHE_ENTRY ssize_t pwritev64v2(int fd, const struct iovec* iov, int iovcnt, off64_t offset,
                                   int flags) {
  if (pass_fd(fd)) return real::fn<Sym::pwritev64v2>()(fd, iov, iovcnt, offset, flags);
  return dispatch::serve<Sym::pwritev64v2>(fd, iov, iovcnt, offset, flags);
}

OBJCACHE_ENTRY int ftruncate(int fd, off_t len) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::ftruncate>()(fd, len);
  return dispatch::serve<Sym::ftruncate>(fd, len);
}

OBJCACHE_ENTRY int ftruncate64(int fd, off64_t len) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::ftruncate64>()(fd, len);
  return dispatch::serve<Sym::ftruncate64>(fd, len);
}

OBJCACHE_ENTRY int fsync(int fd) {
  if (pass_fd(fd)) return real::fn<Sym::fsync>()(fd);
  return dispatch::serve<Sym::fsync>(fd);
}

OBJCACHE_ENTRY int fdatasync(int fd) {
  if (pass_fd(fd)) return real::fn<Sym::fdatasync>()(fd);
  return dispatch::serve<Sym::fdatasync>(fd);
}

OBJCACHE_ENTRY int fallocate(int fd, int mode, off_t offset, off_t len) {
  if (pass_fd(fd)) return real::fn<Sym::fallocate>()(fd, mode, offset, len);
  return dispatch::serve<Sym::fallocate>(fd, mode, offset, len);
}

OBJCACHE_ENTRY int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  if (pass_fd(fd)) return real::fn<Sym::fallocate64>()(fd, mode, offset, len);
  return dispatch::serve<Sym::fallocate64>(fd, mode, offset, len);
}

OBJCACHE_ENTRY int posix_fallocate(int fd, off_t offset, off_t len) {
  if (pass_fd(fd)) return real::fn<Sym::posix_fallocate>()(fd, offset, len);
  return dispatch::serve<Sym::posix_fallocate>(fd, offset, len);
}

OBJCACHE_ENTRY int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  if (pass_fd(fd)) return real::fn<Sym::posix_fallocate64>()(fd, offset, len);
  return dispatch::serve<Sym::posix_fallocate64>(fd, offset, len);
}
