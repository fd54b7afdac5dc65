// SPDX-License-Identifier: Apache-2.0
// Serving virtual fds: reads and seeks from the cache at the shared offset;
// dup, fcntl and close keeping the fd table true; and materialisation (the
// fd becomes a sealed memfd with the object's bytes) before any path that
// reads in the kernel or in libc internals: mmap, sendfile,
// copy_file_range, splice, fdopen/fopen, exec and posix_spawn.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "serve_common.h"

namespace objcache::preload::serve {
namespace {

using dispatch::Outcome;

// Reads at most n bytes at offset into buf from the cache.
Outcome<ssize_t> read_node(const Node& node, void* buf, size_t n, std::uint64_t offset) noexcept {
  if (node.is_dir()) return fail<ssize_t>(EISDIR);
  if (n == 0 || offset >= node.size) return ok<ssize_t>(0);
  if (n > static_cast<size_t>(SSIZE_MAX)) n = static_cast<size_t>(SSIZE_MAX);
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<ssize_t>(err);
  auto got = v->read(node, offset, std::span(static_cast<std::byte*>(buf), n));
  if (!got) return fail<ssize_t>(errno_of(got.status()));
  return ok(static_cast<ssize_t>(*got));
}

bool opened_as_path(const OpenFile& f) noexcept { return (f.status_flags & O_PATH) == O_PATH; }

Outcome<ssize_t> do_read(int fd, void* buf, size_t n) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<ssize_t>(EBADF);
  if (f->materialized.load(std::memory_order_acquire)) {
    ssize_t r = ::read(fd, buf, n);
    return r < 0 ? fail<ssize_t>(errno) : ok(r);
  }
  if (opened_as_path(*f.get())) return fail<ssize_t>(EBADF);
  std::lock_guard<std::mutex> g(f->mu);
  if (f->materialized.load(std::memory_order_relaxed)) {
    ssize_t r = ::read(fd, buf, n);
    return r < 0 ? fail<ssize_t>(errno) : ok(r);
  }
  auto out = read_node(f->node, buf, n, f->offset);
  if (out.error == 0) f->offset += static_cast<std::uint64_t>(out.value);
  return out;
}

Outcome<ssize_t> do_pread(int fd, void* buf, size_t n, off64_t offset) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<ssize_t>(EBADF);
  if (f->materialized.load(std::memory_order_acquire)) {
    ssize_t r = ::pread64(fd, buf, n, offset);
    return r < 0 ? fail<ssize_t>(errno) : ok(r);
  }
  if (opened_as_path(*f.get())) return fail<ssize_t>(EBADF);
  if (offset < 0) return fail<ssize_t>(EINVAL);
  return read_node(f->node, buf, n, static_cast<std::uint64_t>(offset));
}

// readv/preadv: one iovec after another; a short read ends the call.
// offset < 0: at (and advancing) the shared offset.
Outcome<ssize_t> do_readv(int fd, const struct iovec* iov, int iovcnt, off64_t offset) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<ssize_t>(EBADF);
  if (f->materialized.load(std::memory_order_acquire)) {
    ssize_t r = offset < 0 ? ::readv(fd, iov, iovcnt) : ::preadv64(fd, iov, iovcnt, offset);
    return r < 0 ? fail<ssize_t>(errno) : ok(r);
  }
  if (opened_as_path(*f.get())) return fail<ssize_t>(EBADF);
  if (iovcnt < 0 || iovcnt > IOV_MAX) return fail<ssize_t>(EINVAL);
  std::unique_lock<std::mutex> lock(f->mu, std::defer_lock);
  const bool shared = offset < 0;
  if (shared) lock.lock();
  std::uint64_t pos = shared ? f->offset : static_cast<std::uint64_t>(offset);
  ssize_t total = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len == 0) continue;
    auto r = read_node(f->node, iov[i].iov_base, iov[i].iov_len, pos);
    if (r.error != 0) {
      if (total > 0) break;
      return r;
    }
    total += r.value;
    pos += static_cast<std::uint64_t>(r.value);
    if (static_cast<size_t>(r.value) < iov[i].iov_len) break;
  }
  if (shared) f->offset = pos;
  return ok(total);
}

Outcome<off64_t> do_lseek(int fd, off64_t offset, int whence) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<off64_t>(EBADF);
  if (f->materialized.load(std::memory_order_acquire)) {
    off64_t r = ::lseek64(fd, offset, whence);
    return r < 0 ? fail<off64_t>(errno) : ok(r);
  }
  if (opened_as_path(*f.get())) return fail<off64_t>(EBADF);
  std::lock_guard<std::mutex> g(f->mu);
  const auto size = static_cast<off64_t>(f->node.size);
  off64_t base = 0;
  switch (whence) {
    case SEEK_SET:
      base = 0;
      break;
    case SEEK_CUR:
      base = static_cast<off64_t>(f->offset);
      break;
    case SEEK_END:
      base = size;
      break;
    case SEEK_DATA:
      if (offset < 0) return fail<off64_t>(EINVAL);
      if (offset >= size) return fail<off64_t>(ENXIO);
      f->offset = static_cast<std::uint64_t>(offset);
      return ok(offset);
    case SEEK_HOLE:
      if (offset < 0) return fail<off64_t>(EINVAL);
      if (offset >= size) return fail<off64_t>(ENXIO);
      f->offset = static_cast<std::uint64_t>(size);
      return ok(size);
    default:
      return fail<off64_t>(EINVAL);
  }
  if ((offset > 0 && base > LLONG_MAX - offset) || base + offset < 0) return fail<off64_t>(EINVAL);
  f->offset = static_cast<std::uint64_t>(base + offset);
  return ok(base + offset);
}

// Materialises fd if it is a virtual file; 0 or an errno.
int make_real(int fd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return 0;
  if (f->node.is_dir() || f->materialized.load(std::memory_order_acquire)) return 0;
  if (opened_as_path(*f.get())) return EBADF;
  return vfile::materialize(f.get());
}

// After the real call made newfd a copy of fd: newfd joins fd's OpenFile.
void note_dup(int fd, int newfd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return;
  if (vfile::in_vfork_child()) {
    vfile::note_vfork_dup(newfd, f.get());
    return;
  }
  (void)vfile::attach(newfd, f.get());
}

Outcome<int> do_dup2(int fd, int fd2, int flags, bool is_dup3) noexcept {
  if (fd == fd2) {
    if (is_dup3) return fail<int>(EINVAL);
    if (::fcntl(fd, F_GETFD) < 0) return fail<int>(errno);
    return ok(fd2);
  }
  int r = is_dup3 ? ::dup3(fd, fd2, flags) : ::dup2(fd, fd2);
  if (r < 0) return fail<int>(errno);
  if (!vfile::in_vfork_child()) (void)vfile::detach(fd2);  // fd2's old file is closed
  note_dup(fd, fd2);
  return ok(r);
}

Outcome<int> do_fcntl(int fd, int cmd, const FcntlArg& arg) noexcept {
  if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
    int r = call_fcntl(::fcntl, fd, cmd, arg);
    if (r < 0) return fail<int>(errno);
    note_dup(fd, r);
    return ok(r);
  }
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (cmd == F_GETFL) return ok(f->status_flags);
  if (cmd == F_SETFL) {
    const int settable = O_NONBLOCK | O_DIRECT | O_NOATIME | O_APPEND | O_ASYNC;
    f->status_flags = (f->status_flags & ~settable) | (arg.integer & settable);
    return ok(0);
  }
  if (!f->materialized.load(std::memory_order_acquire)) {
    switch (cmd) {
      case F_SETLK:
      case F_SETLKW:
      case F_OFD_SETLK:
      case F_OFD_SETLKW: {
        // Read locks (sqlite's on a read-only database) always succeed:
        // nobody can write under a read-only mount.
        auto* lk = static_cast<struct flock*>(arg.pointer);
        if (lk == nullptr) return fail<int>(EFAULT);
        if (lk->l_type == F_WRLCK) return fail<int>(EBADF);
        return ok(0);
      }
      case F_GETLK:
      case F_OFD_GETLK: {
        auto* lk = static_cast<struct flock*>(arg.pointer);
        if (lk == nullptr) return fail<int>(EFAULT);
        lk->l_type = F_UNLCK;
        return ok(0);
      }
      default:
        break;
    }
  }
  int r = call_fcntl(::fcntl, fd, cmd, arg);
  return r < 0 ? fail<int>(errno) : ok(r);
}

Outcome<int> do_close(int fd) noexcept {
  if (!vfile::in_vfork_child()) (void)vfile::detach(fd);
  return ::close(fd) == 0 ? ok(0) : fail<int>(errno);
}

void detach_range(unsigned first, unsigned last) noexcept {
  if (vfile::in_vfork_child()) return;
  int fds[256];
  for (;;) {
    int n = 0;
    dispatch::g_fds.for_each_in_range(first, last, [&](int fd, OpenFile*) {
      fds[n++] = fd;
      return n < 256;
    });
    for (int i = 0; i < n; ++i) (void)vfile::detach(fds[i]);
    if (n < 256) return;
  }
}

// exec: `call` must use the real functions (real::fn), never our entry
// points. The re-entry guard is lowered around it: in a vfork child this
// thread's TLS is the parent's, and an exec that succeeds never comes back
// to lower it, which would leave the parent "inside the shim" for good.
template <typename Fn>
Outcome<int> exec_after_materialize(Fn&& call) noexcept {
  vfile::materialize_for_exec(/*spawn=*/false);
  const unsigned depth = t_shim_depth;
  t_shim_depth = 0;
  int r = call();
  int e = errno;
  t_shim_depth = depth;
  return r < 0 ? fail<int>(e) : ok(r);
}

template <typename Fn>
Outcome<int> spawn_after_materialize(Fn&& call) noexcept {
  vfile::materialize_for_exec(/*spawn=*/true);
  return ok(call());  // posix_spawn returns its error number
}

bool stdio_mode_writes(const char* mode) noexcept {
  return mode == nullptr || std::strpbrk(mode, "wa+") != nullptr;
}

Outcome<FILE*> do_fopen(const char* path, const char* mode) noexcept {
  if (stdio_mode_writes(mode)) {
    Lookup l = lookup_path(path);
    if (l.error != 0 && l.error != ENOENT) return fail<FILE*>(l.error);
    return fail<FILE*>(l.error == 0 && l.node.is_dir() ? EISDIR : EROFS);
  }
  int flags = O_RDONLY | (std::strchr(mode, 'e') != nullptr ? O_CLOEXEC : 0);
  Lookup l = lookup_path(path);
  if (l.error != 0) return fail<FILE*>(l.error);
  int fd = vfile::open_node(std::move(l.node), flags);
  if (fd < 0) return fail<FILE*>(-fd);
  if (int e = make_real(fd); e != 0) {
    (void)do_close(fd);
    return fail<FILE*>(e);
  }
  FILE* s = ::fdopen(fd, mode);
  if (s == nullptr) {
    int e = errno;
    (void)do_close(fd);
    return fail<FILE*>(e);
  }
  return ok(s);
}

Outcome<FILE*> do_fdopen(int fd, const char* mode) noexcept {
  if (int e = make_real(fd); e != 0) return fail<FILE*>(e);
  FILE* s = ::fdopen(fd, mode);
  return s != nullptr ? ok(s) : fail<FILE*>(errno);
}

Outcome<int> do_fclose(FILE* stream) noexcept {
  int fd = ::fileno(stream);
  if (fd >= 0 && !vfile::in_vfork_child()) (void)vfile::detach(fd);
  int r = ::fclose(stream);
  return r == 0 ? ok(0) : fail<int>(errno);
}

Outcome<FILE*> do_freopen(const char* path, const char* mode, FILE* stream) noexcept {
  // The old stream is closed whatever happens next (as freopen does).
  if (stream != nullptr) {
    int fd = ::fileno(stream);
    if (fd >= 0 && dispatch::fd_is_ours(fd)) {
      if (path == nullptr) return fail<FILE*>(EBADF);  // reopening a virtual fd's mode
      (void)do_fclose(stream);
      stream = nullptr;
    }
  }
  if (path != nullptr && dispatch::path_is_ours(path)) {
    if (stream != nullptr) (void)::fclose(stream);
    return do_fopen(path, mode);
  }
  if (stream == nullptr) {
    FILE* s = ::fopen(path, mode);
    return s != nullptr ? ok(s) : fail<FILE*>(errno);
  }
  FILE* s = ::freopen(path, mode, stream);
  return s != nullptr ? ok(s) : fail<FILE*>(errno);
}

template <typename Off>
Outcome<void*> do_mmap(void* addr, size_t len, int prot, int flags, int fd, Off off) noexcept {
  if (int e = make_real(fd); e != 0) return {MAP_FAILED, e};
  void* p = ::mmap64(addr, len, prot, flags, fd, off);
  return p == MAP_FAILED ? Outcome<void*>{MAP_FAILED, errno} : ok(p);
}

// In-kernel copies: every virtual fd involved becomes real first.
int make_both_real(int a, int b) noexcept {
  if (int e = make_real(a); e != 0) return e;
  return make_real(b);
}

}  // namespace
}  // namespace objcache::preload::serve

namespace objcache::preload::dispatch {

using namespace serve;

// ---- io -------------------------------------------------------------------------
OBJCACHE_SERVE(read, int fd, void* b, size_t n) { return do_read(fd, b, n); }
OBJCACHE_SERVE(__read_chk, int fd, void* b, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_read(fd, b, n);
}
OBJCACHE_SERVE(pread, int fd, void* b, size_t n, off_t o) { return do_pread(fd, b, n, o); }
OBJCACHE_SERVE(pread64, int fd, void* b, size_t n, off64_t o) { return do_pread(fd, b, n, o); }
OBJCACHE_SERVE(__pread_chk, int fd, void* b, size_t n, off_t o, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_pread(fd, b, n, o);
}
OBJCACHE_SERVE(__pread64_chk, int fd, void* b, size_t n, off64_t o, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_pread(fd, b, n, o);
}
OBJCACHE_SERVE(readv, int fd, const struct iovec* v, int c) { return do_readv(fd, v, c, -1); }
OBJCACHE_SERVE(preadv, int fd, const struct iovec* v, int c, off_t o) {
  if (o < 0) return fail<ssize_t>(EINVAL);
  return do_readv(fd, v, c, o);
}
OBJCACHE_SERVE(preadv64, int fd, const struct iovec* v, int c, off64_t o) {
  if (o < 0) return fail<ssize_t>(EINVAL);
  return do_readv(fd, v, c, o);
}
// preadv2 with offset -1 means "at the file offset".
OBJCACHE_SERVE(preadv2, int fd, const struct iovec* v, int c, off_t o, int) {
  if (o < -1) return fail<ssize_t>(EINVAL);
  return do_readv(fd, v, c, o);
}
OBJCACHE_SERVE(preadv64v2, int fd, const struct iovec* v, int c, off64_t o, int) {
  if (o < -1) return fail<ssize_t>(EINVAL);
  return do_readv(fd, v, c, o);
}
OBJCACHE_SERVE(lseek, int fd, off_t o, int w) {
  auto r = do_lseek(fd, o, w);
  return {static_cast<off_t>(r.value), r.error};
}
OBJCACHE_SERVE(lseek64, int fd, off64_t o, int w) { return do_lseek(fd, o, w); }
OBJCACHE_SERVE(posix_fadvise, int fd, off_t, off_t, int) {
  return ok(fd_is_ours(fd) ? 0 : EBADF);
}
OBJCACHE_SERVE(posix_fadvise64, int fd, off64_t, off64_t, int) {
  return ok(fd_is_ours(fd) ? 0 : EBADF);
}
OBJCACHE_SERVE(readahead, int fd, off64_t, size_t) {
  return fd_is_ours(fd) ? ok<ssize_t>(0) : fail<ssize_t>(EBADF);
}

// ---- fd table -----------------------------------------------------------------
OBJCACHE_SERVE(close, int fd) { return do_close(fd); }
OBJCACHE_SERVE(close_range, unsigned int first, unsigned int last, int flags) {
  if ((flags & CLOSE_RANGE_CLOEXEC) == 0) detach_range(first, last);
  return ::close_range(first, last, flags) == 0 ? ok(0) : fail<int>(errno);
}
OBJCACHE_SERVE(closefrom, int lowfd) {
  detach_range(lowfd < 0 ? 0u : static_cast<unsigned>(lowfd), ~0u);
  ::closefrom(lowfd);
  return {0};
}
OBJCACHE_SERVE(dup, int fd) {
  int r = ::dup(fd);
  if (r < 0) return fail<int>(errno);
  note_dup(fd, r);
  return ok(r);
}
OBJCACHE_SERVE(dup2, int fd, int fd2) { return do_dup2(fd, fd2, 0, false); }
OBJCACHE_SERVE(dup3, int fd, int fd2, int flags) { return do_dup2(fd, fd2, flags, true); }
OBJCACHE_SERVE(fcntl, int fd, int cmd, FcntlArg a) { return do_fcntl(fd, cmd, a); }
OBJCACHE_SERVE(fcntl64, int fd, int cmd, FcntlArg a) { return do_fcntl(fd, cmd, a); }
OBJCACHE_SERVE(isatty, int fd) {
  FileRef f = FileRef::acquire(fd);
  if (!f) return {0, EBADF};
  return {0, ENOTTY};
}

// ---- fork, exec, spawn ----------------------------------------------------------
OBJCACHE_SERVE(fork) {
  pid_t p = ::fork();
  if (p < 0) return fail<pid_t>(errno);
  if (p == 0) vfile::note_fork_child();
  return ok(p);
}
OBJCACHE_SERVE(execve, const char* p, char* const* a, char* const* e) {
  return exec_after_materialize([&] { return real::fn<Sym::execve>()(p, a, lib::env_with_cwd(e)); });
}
OBJCACHE_SERVE(execv, const char* p, char* const* a) {
  return exec_after_materialize([&] { return real::fn<Sym::execve>()(p, a, lib::env_with_cwd(environ)); });
}
OBJCACHE_SERVE(execvp, const char* p, char* const* a) {
  return exec_after_materialize([&] { return real::fn<Sym::execvpe>()(p, a, lib::env_with_cwd(environ)); });
}
OBJCACHE_SERVE(execvpe, const char* p, char* const* a, char* const* e) {
  return exec_after_materialize([&] { return real::fn<Sym::execvpe>()(p, a, lib::env_with_cwd(e)); });
}
OBJCACHE_SERVE(fexecve, int fd, char* const* a, char* const* e) {
  return exec_after_materialize([&] { return real::fn<Sym::fexecve>()(fd, a, lib::env_with_cwd(e)); });
}
OBJCACHE_SERVE(posix_spawn, pid_t* pid, const char* p, const posix_spawn_file_actions_t* fa,
               const posix_spawnattr_t* at, char* const* a, char* const* e) {
  return spawn_after_materialize([&] { return ::posix_spawn(pid, p, fa, at, a, lib::env_with_cwd(e)); });
}
OBJCACHE_SERVE(posix_spawnp, pid_t* pid, const char* p, const posix_spawn_file_actions_t* fa,
               const posix_spawnattr_t* at, char* const* a, char* const* e) {
  return spawn_after_materialize([&] { return ::posix_spawnp(pid, p, fa, at, a, lib::env_with_cwd(e)); });
}

// ---- stdio ----------------------------------------------------------------------
OBJCACHE_SERVE(fopen, const char* p, const char* m) { return do_fopen(p, m); }
OBJCACHE_SERVE(fopen64, const char* p, const char* m) { return do_fopen(p, m); }
OBJCACHE_SERVE(freopen, const char* p, const char* m, FILE* s) { return do_freopen(p, m, s); }
OBJCACHE_SERVE(freopen64, const char* p, const char* m, FILE* s) { return do_freopen(p, m, s); }
OBJCACHE_SERVE(fdopen, int fd, const char* m) { return do_fdopen(fd, m); }
OBJCACHE_SERVE(fclose, FILE* s) { return do_fclose(s); }

// ---- mappings and in-kernel copies ------------------------------------------------
OBJCACHE_SERVE(mmap, void* a, size_t l, int p, int f, int fd, off_t o) { return do_mmap(a, l, p, f, fd, o); }
OBJCACHE_SERVE(mmap64, void* a, size_t l, int p, int f, int fd, off64_t o) {
  return do_mmap(a, l, p, f, fd, o);
}
OBJCACHE_SERVE(munmap, void* a, size_t l) {
  return ::munmap(a, l) == 0 ? ok(0) : fail<int>(errno);
}
OBJCACHE_SERVE(sendfile, int out, int in, off_t* off, size_t n) {
  if (int e = make_both_real(out, in); e != 0) return fail<ssize_t>(e);
  ssize_t r = ::sendfile(out, in, off, n);
  return r < 0 ? fail<ssize_t>(errno) : ok(r);
}
OBJCACHE_SERVE(sendfile64, int out, int in, off64_t* off, size_t n) {
  if (int e = make_both_real(out, in); e != 0) return fail<ssize_t>(e);
  ssize_t r = ::sendfile64(out, in, off, n);
  return r < 0 ? fail<ssize_t>(errno) : ok(r);
}
OBJCACHE_SERVE(copy_file_range, int in, off64_t* in_off, int out, off64_t* out_off, size_t n,
               unsigned int flags) {
  if (int e = make_both_real(in, out); e != 0) return fail<ssize_t>(e);
  ssize_t r = ::copy_file_range(in, in_off, out, out_off, n, flags);
  return r < 0 ? fail<ssize_t>(errno) : ok(r);
}
OBJCACHE_SERVE(splice, int in, off64_t* in_off, int out, off64_t* out_off, size_t n, unsigned int flags) {
  if (int e = make_both_real(in, out); e != 0) return fail<ssize_t>(e);
  ssize_t r = ::splice(in, in_off, out, out_off, n, flags);
  return r < 0 ? fail<ssize_t>(errno) : ok(r);
}
OBJCACHE_SERVE(ioctl, int fd, unsigned long req, void* arg) {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (f->materialized.load(std::memory_order_acquire)) {
    int r = ::ioctl(fd, req, arg);
    return r < 0 ? fail<int>(errno) : ok(r);
  }
  if (req == FIONREAD && !f->node.is_dir()) {
    if (arg == nullptr) return fail<int>(EFAULT);
    std::lock_guard<std::mutex> g(f->mu);
    const std::uint64_t left = f->offset < f->node.size ? f->node.size - f->offset : 0;
    *static_cast<int*>(arg) = static_cast<int>(std::min<std::uint64_t>(left, INT_MAX));
    return ok(0);
  }
  return fail<int>(ENOTTY);
}

}  // namespace objcache::preload::dispatch
