// SPDX-License-Identifier: Apache-2.0
// Serving virtual fds: reads and seeks from the cache at the shared offset;
// dup, fcntl and close keeping the fd table true (the last close of a
// staged file commits it); and materialisation (the fd becomes a sealed
// memfd with the object's bytes) before any path that reads in the kernel
// or in libc internals: mmap, sendfile, copy_file_range, splice,
// fdopen/fopen (serve_stdio.cpp), exec and posix_spawn. Writes the kernel
// makes into a staged file (a shared writable mapping, an in-kernel copy
// into it, a clone) are reported to it.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "handover.h"
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
    auto lock = offset_lock(*f.get());
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
    auto lock = offset_lock(*f.get());
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
    auto lock = offset_lock(*f.get());
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

}  // namespace

int make_real(int fd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return 0;
  if (f->node.is_dir() || f->materialized.load(std::memory_order_acquire)) return 0;
  if (opened_as_path(*f.get())) return EBADF;
  return vfile::materialize(f.get());
}

namespace {

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
  vfile::Detached old;
  if (!vfile::in_vfork_child()) old = vfile::detach(fd2);  // fd2's old file is closed
  note_dup(fd, fd2);
  // fd2 may be a stream's (a shell's `echo > file` puts the file on fd 1,
  // where stdout writes from inside libc): what it streams is checked.
  if (!vfile::in_vfork_child()) {
    FileRef f = FileRef::acquire(fd2);
    if (f && f->staged && (f->status_flags & O_ACCMODE) != O_RDONLY) {
      staged::unseen(*f->staged, StagedFile::Unseen::Buffered);
    }
  }
  // As close(fd2) would: the commit's error, though the dup is done.
  if (int e = commit_closed(old); e != 0) return fail<int>(e);
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
  if (f->staged) {
    // A real file: the kernel answers (and locks: sqlite's, within the node).
    int r = call_fcntl(::fcntl, fd, cmd, arg);
    if (r < 0) return fail<int>(errno);
    if (cmd == F_SETFL) f->status_flags = (f->status_flags & ~O_APPEND) | (arg.integer & O_APPEND);
    return ok(r);
  }
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

}  // namespace

Outcome<int> close_fd(int fd) noexcept {
  vfile::Detached d;
  if (!vfile::in_vfork_child()) d = vfile::detach(fd);
  const int r = ::close(fd);
  const int e = errno;
  if (int ce = commit_closed(d); ce != 0) return fail<int>(ce);
  return r == 0 ? ok(0) : fail<int>(e);
}

namespace {

// Unregisters the fds in [first, last]; the staged files whose last fd
// they were go to `last_ones` (committed once the kernel fds are closed).
void detach_range(unsigned first, unsigned last, std::vector<vfile::Detached>* last_ones) noexcept {
  if (vfile::in_vfork_child()) return;
  int fds[256];
  for (;;) {
    int n = 0;
    dispatch::fds().for_each_in_range(first, last, [&](int fd, OpenFile*) {
      fds[n++] = fd;
      return n < 256;
    });
    for (int i = 0; i < n; ++i) {
      vfile::Detached d = vfile::detach(fds[i]);
      if (d.last) {
        try {
          last_ones->push_back(std::move(d));
        } catch (...) {
          (void)commit_closed(d);  // out of memory: commit before the close, rather than never
        }
      }
    }
    if (n < 256) return;
  }
}

// 0, or the first commit's errno.
int commit_all(const std::vector<vfile::Detached>& last_ones) noexcept {
  int err = 0;
  for (const auto& d : last_ones) {
    const int e = commit_closed(d);
    if (err == 0) err = e;
  }
  return err;
}

// exec: `call` must use the real functions (real::fn), never our entry
// points. The re-entry guard is lowered around it: in a vfork child this
// thread's TLS is the parent's, and an exec that succeeds never comes back
// to lower it, which would leave the parent "inside the shim" for good.
//
// The staged files this process owns: those with an fd that survives are
// handed to the new image (handover.h), the others committed, since a
// CLOEXEC fd dies here. A vfork child owns none (they are its parent's): it
// only tells the parent that another process may now write through them.
template <typename Fn>
Outcome<int> exec_after_materialize(Fn&& call) noexcept {
  std::string handed;
  if (vfile::in_vfork_child()) {
    staged::note_spawn();
  } else {
    handed = handover::prepare_exec();
  }
  vfile::materialize_for_exec(/*spawn=*/false);
  unsigned& shim_depth = depth_ref();
  const unsigned depth = shim_depth;
  shim_depth = 0;
  int r = call(handed);
  int e = errno;
  shim_depth = depth;
  return r < 0 ? fail<int>(e) : ok(r);
}

template <typename Fn>
Outcome<int> spawn_after_materialize(Fn&& call) noexcept {
  vfile::materialize_for_exec(/*spawn=*/true);
  const int r = call();  // posix_spawn returns its error number
  staged::note_spawn();
  return ok(r);
}

// A shared mapping of a staged file open for writing writes where nobody
// reports: now, or after an mprotect that makes it writable (not hooked).
template <typename Off>
Outcome<void*> do_mmap(void* addr, size_t len, int prot, int flags, int fd, Off off) noexcept {
  if (int e = make_real(fd); e != 0) return {MAP_FAILED, e};
  void* p = ::mmap64(addr, len, prot, flags, fd, off);
  if (p == MAP_FAILED) return Outcome<void*>{MAP_FAILED, errno};
  if ((flags & MAP_TYPE) != MAP_PRIVATE) {
    FileRef f = FileRef::acquire(fd);
    if (f && f->staged && (f->status_flags & O_ACCMODE) != O_RDONLY) {
      staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
    }
  }
  return ok(p);
}

// In-kernel copies: every virtual fd involved becomes real first.
int make_both_real(int a, int b) noexcept {
  if (int e = make_real(a); e != 0) return e;
  return make_real(b);
}

// An in-kernel copy into `out`: when it is a staged file, the range written
// is reported (at *out_off as it was, else at the file offset it moved).
template <typename Call>
Outcome<ssize_t> copy_into(int out, const off64_t* out_off, Call&& call) noexcept {
  FileRef f = FileRef::acquire(out);
  if (!f || !f->staged) {
    const ssize_t r = call();
    return r < 0 ? fail<ssize_t>(errno) : ok(r);
  }
  if (out_off != nullptr) {
    const off64_t start = *out_off;
    const ssize_t r = call();
    if (r < 0) return fail<ssize_t>(errno);
    if (r > 0) staged::wrote(*f->staged, static_cast<std::uint64_t>(start), static_cast<std::uint64_t>(r));
    return ok(r);
  }
  std::lock_guard<std::mutex> g(f->mu);
  const ssize_t r = call();
  if (r < 0) return fail<ssize_t>(errno);
  if (r > 0) {
    const off64_t end = ::lseek64(out, 0, SEEK_CUR);
    if (end >= r) {
      staged::wrote(*f->staged, static_cast<std::uint64_t>(end - r), static_cast<std::uint64_t>(r));
    } else {
      staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
    }
  }
  return ok(r);
}

// ioctl on a staged file: the kernel's; a clone into it writes unseen. A
// clone from one of our placeholders (no bytes in the kernel) is EXDEV, as
// between two file systems.
Outcome<int> staged_ioctl(int fd, OpenFile& f, unsigned long req, void* arg) noexcept {
  const bool clone = req == FICLONE || req == FICLONERANGE;
  if (clone) {
    const int src = req == FICLONE ? static_cast<int>(reinterpret_cast<std::intptr_t>(arg))
                    : arg != nullptr ? static_cast<int>(static_cast<struct file_clone_range*>(arg)->src_fd)
                                     : -1;
    if (FileRef s = FileRef::acquire(src); s && !s->materialized.load(std::memory_order_acquire)) {
      return fail<int>(EXDEV);
    }
  }
  const int r = ::ioctl(fd, req, arg);
  if (r < 0) return fail<int>(errno);
  if (clone) staged::unseen(*f.staged, StagedFile::Unseen::Anywhere);
  return ok(r);
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
OBJCACHE_SERVE(close, int fd) { return close_fd(fd); }
OBJCACHE_SERVE(close_range, unsigned int first, unsigned int last, int flags) {
  std::vector<vfile::Detached> last_ones;
  if ((flags & CLOSE_RANGE_CLOEXEC) == 0) detach_range(first, last, &last_ones);
  const int r = ::close_range(first, last, flags);
  const int e = errno;
  if (int ce = commit_all(last_ones); ce != 0) return fail<int>(ce);
  return r == 0 ? ok(0) : fail<int>(e);
}
// closefrom returns nothing: a failed commit is only logged (and its bytes
// kept in the staging directory).
OBJCACHE_SERVE(closefrom, int lowfd) {
  std::vector<vfile::Detached> last_ones;
  detach_range(lowfd < 0 ? 0u : static_cast<unsigned>(lowfd), ~0u, &last_ones);
  ::closefrom(lowfd);
  (void)commit_all(last_ones);
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
// The parent's staged files: the child may write through the fds it
// inherited (its own copies of them upload nothing).
OBJCACHE_SERVE(fork) {
  pid_t p = ::fork();
  if (p < 0) return fail<pid_t>(errno);
  if (p == 0) {
    vfile::note_fork_child();
  } else {
    staged::note_spawn();
  }
  return ok(p);
}
OBJCACHE_SERVE(execve, const char* p, char* const* a, char* const* e) {
  return exec_after_materialize([&](const std::string& h) {
    return real::fn<Sym::execve>()(p, a, lib::env_for_exec(e, h));
  });
}
OBJCACHE_SERVE(execv, const char* p, char* const* a) {
  return exec_after_materialize([&](const std::string& h) {
    return real::fn<Sym::execve>()(p, a, lib::env_for_exec(environ, h));
  });
}
OBJCACHE_SERVE(execvp, const char* p, char* const* a) {
  return exec_after_materialize([&](const std::string& h) {
    return real::fn<Sym::execvpe>()(p, a, lib::env_for_exec(environ, h));
  });
}
OBJCACHE_SERVE(execvpe, const char* p, char* const* a, char* const* e) {
  return exec_after_materialize([&](const std::string& h) {
    return real::fn<Sym::execvpe>()(p, a, lib::env_for_exec(e, h));
  });
}
OBJCACHE_SERVE(fexecve, int fd, char* const* a, char* const* e) {
  return exec_after_materialize([&](const std::string& h) {
    return real::fn<Sym::fexecve>()(fd, a, lib::env_for_exec(e, h));
  });
}
OBJCACHE_SERVE(posix_spawn, pid_t* pid, const char* p, const posix_spawn_file_actions_t* fa,
               const posix_spawnattr_t* at, char* const* a, char* const* e) {
  return spawn_after_materialize([&] { return ::posix_spawn(pid, p, fa, at, a, lib::env_for_exec(e, {})); });
}
OBJCACHE_SERVE(posix_spawnp, pid_t* pid, const char* p, const posix_spawn_file_actions_t* fa,
               const posix_spawnattr_t* at, char* const* a, char* const* e) {
  return spawn_after_materialize([&] { return ::posix_spawnp(pid, p, fa, at, a, lib::env_for_exec(e, {})); });
}

// ---- mappings and in-kernel copies ------------------------------------------------
OBJCACHE_SERVE(mmap, void* a, size_t l, int p, int f, int fd, off_t o) { return do_mmap(a, l, p, f, fd, o); }
OBJCACHE_SERVE(mmap64, void* a, size_t l, int p, int f, int fd, off64_t o) {
  return do_mmap(a, l, p, f, fd, o);
}
// sendfile's offset is the input's: the output is written at its offset.
OBJCACHE_SERVE(sendfile, int out, int in, off_t* off, size_t n) {
  if (int e = make_both_real(out, in); e != 0) return fail<ssize_t>(e);
  return copy_into(out, nullptr, [&] { return ::sendfile(out, in, off, n); });
}
OBJCACHE_SERVE(sendfile64, int out, int in, off64_t* off, size_t n) {
  if (int e = make_both_real(out, in); e != 0) return fail<ssize_t>(e);
  return copy_into(out, nullptr, [&] { return ::sendfile64(out, in, off, n); });
}
OBJCACHE_SERVE(copy_file_range, int in, off64_t* in_off, int out, off64_t* out_off, size_t n,
               unsigned int flags) {
  if (int e = make_both_real(in, out); e != 0) return fail<ssize_t>(e);
  return copy_into(out, out_off, [&] { return ::copy_file_range(in, in_off, out, out_off, n, flags); });
}
OBJCACHE_SERVE(splice, int in, off64_t* in_off, int out, off64_t* out_off, size_t n, unsigned int flags) {
  if (int e = make_both_real(in, out); e != 0) return fail<ssize_t>(e);
  return copy_into(out, out_off, [&] { return ::splice(in, in_off, out, out_off, n, flags); });
}
OBJCACHE_SERVE(ioctl, int fd, unsigned long req, void* arg) {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (f->staged) return staged_ioctl(fd, *f.get(), req, arg);
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
