// SPDX-License-Identifier: Apache-2.0
// Entry points: the calls whose data moves inside the kernel (mappings,
// sendfile, copy_file_range, splice, FICLONE) and so never pass through a
// read hook: for a virtual fd the range must be made resident first.
#include "entry.h"

using namespace objcache::preload;

namespace {
bool pass_map(int flags, int fd) noexcept {
  return in_shim() || (flags & MAP_ANONYMOUS) != 0 || !dispatch::fd_is_ours(fd);
}
}  // namespace

OBJCACHE_ENTRY void* mmap(void* addr, size_t len, int prot, int flags, int fd,
                          off_t offset) noexcept {
  if (pass_map(flags, fd)) return real::fn<Sym::mmap>()(addr, len, prot, flags, fd, offset);
  return dispatch::serve<Sym::mmap>(addr, len, prot, flags, fd, offset);
}

OBJCACHE_ENTRY void* mmap64(void* addr, size_t len, int prot, int flags, int fd,
                            off64_t offset) noexcept {
  if (pass_map(flags, fd)) return real::fn<Sym::mmap64>()(addr, len, prot, flags, fd, offset);
  return dispatch::serve<Sym::mmap64>(addr, len, prot, flags, fd, offset);
}

OBJCACHE_ENTRY ssize_t sendfile(int out_fd, int in_fd, off_t* offset, size_t count) noexcept {
  if (pass_fds(out_fd, in_fd)) return real::fn<Sym::sendfile>()(out_fd, in_fd, offset, count);
  return dispatch::serve<Sym::sendfile>(out_fd, in_fd, offset, count);
}

OBJCACHE_ENTRY ssize_t sendfile64(int out_fd, int in_fd, off64_t* offset, size_t count) noexcept {
  if (pass_fds(out_fd, in_fd)) return real::fn<Sym::sendfile64>()(out_fd, in_fd, offset, count);
  return dispatch::serve<Sym::sendfile64>(out_fd, in_fd, offset, count);
}

OBJCACHE_ENTRY ssize_t copy_file_range(int in_fd, off64_t* in_off, int out_fd, off64_t* out_off,
                                       size_t len, unsigned int flags) {
  if (pass_fds(in_fd, out_fd)) {
    return real::fn<Sym::copy_file_range>()(in_fd, in_off, out_fd, out_off, len, flags);
  }
  return dispatch::serve<Sym::copy_file_range>(in_fd, in_off, out_fd, out_off, len, flags);
}

OBJCACHE_ENTRY ssize_t splice(int in_fd, off64_t* in_off, int out_fd, off64_t* out_off, size_t len,
                              unsigned int flags) {
  if (pass_fds(in_fd, out_fd)) {
    return real::fn<Sym::splice>()(in_fd, in_off, out_fd, out_off, len, flags);
  }
  return dispatch::serve<Sym::splice>(in_fd, in_off, out_fd, out_off, len, flags);
}

// The third argument is whatever the request says; glibc forwards it as a
// pointer-sized value, and so do we.
OBJCACHE_ENTRY int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (pass_fd(fd)) return real::fn<Sym::ioctl>()(fd, request, arg);
  return dispatch::serve<Sym::ioctl>(fd, request, arg);
}
