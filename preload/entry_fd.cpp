// SPDX-License-Identifier: Apache-2.0
// Entry points: the fd-table operations. A virtual fd may be the source or
// the target of dup2/dup3 (a dup2 over it ends it), and close_range/closefrom
// can end many at once.
#include "entry.h"

using namespace objcache::preload;

namespace {
bool pass_range(unsigned first, unsigned last) noexcept {
  return in_shim() || !dispatch::fd_range_has_ours(first, last);
}
unsigned low_bound(int lowfd) noexcept { return lowfd < 0 ? 0u : static_cast<unsigned>(lowfd); }
}  // namespace

OBJCACHE_ENTRY int close(int fd) {
  if (pass_fd(fd)) return real::fn<Sym::close>()(fd);
  return dispatch::serve<Sym::close>(fd);
}

OBJCACHE_ENTRY int close_range(unsigned int first, unsigned int last, int flags) noexcept {
  if (pass_range(first, last)) return real::fn<Sym::close_range>()(first, last, flags);
  return dispatch::serve<Sym::close_range>(first, last, flags);
}

OBJCACHE_ENTRY void closefrom(int lowfd) noexcept {
  if (pass_range(low_bound(lowfd), ~0u)) return real::fn<Sym::closefrom>()(lowfd);
  return dispatch::serve<Sym::closefrom>(lowfd);
}

OBJCACHE_ENTRY int dup(int fd) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::dup>()(fd);
  return dispatch::serve<Sym::dup>(fd);
}

OBJCACHE_ENTRY int dup2(int fd, int fd2) noexcept {
  if (pass_fds(fd, fd2)) return real::fn<Sym::dup2>()(fd, fd2);
  return dispatch::serve<Sym::dup2>(fd, fd2);
}

OBJCACHE_ENTRY int dup3(int fd, int fd2, int flags) noexcept {
  if (pass_fds(fd, fd2)) return real::fn<Sym::dup3>()(fd, fd2, flags);
  return dispatch::serve<Sym::dup3>(fd, fd2, flags);
}

OBJCACHE_ENTRY int fcntl(int fd, int cmd, ...) {
  OBJCACHE_PRELOAD_READ_FCNTL_ARG(cmd, arg);
  if (pass_fd(fd)) return call_fcntl(real::fn<Sym::fcntl>(), fd, cmd, arg);
  return dispatch::serve<Sym::fcntl>(fd, cmd, arg);
}

OBJCACHE_ENTRY int fcntl64(int fd, int cmd, ...) {
  OBJCACHE_PRELOAD_READ_FCNTL_ARG(cmd, arg);
  if (pass_fd(fd)) return call_fcntl(real::fn<Sym::fcntl64>(), fd, cmd, arg);
  return dispatch::serve<Sym::fcntl64>(fd, cmd, arg);
}

OBJCACHE_ENTRY int isatty(int fd) noexcept {
  if (pass_fd(fd)) return real::fn<Sym::isatty>()(fd);
  return dispatch::serve<Sym::isatty>(fd);
}
