// SPDX-License-Identifier: Apache-2.0
// Serving writes to writable mounts: open for writing makes a staged file
// (Vfs::open_for_write) whose real fd the program gets; every write through
// it goes to the kernel and its range is reported to the StagedFile, which
// streams the object while the writer writes in order. fsync uploads what
// was written; the last close commits (serve_fd.cpp). On a read-only
// virtual fd these calls answer as a file opened O_RDONLY (or O_PATH)
// would: the kernel's placeholder never sees them.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "serve_common.h"

namespace objcache::preload::serve {

using dispatch::Outcome;

bool staged_node(const Staged& s, int fd, Node* out) noexcept {
  struct stat64 st;
  if ((fd >= 0 ? ::fstat64(fd, &st) : ::stat64(s.data_path.c_str(), &st)) != 0) return false;
  try {
    Node n;
    n.kind = NodeKind::File;
    n.mount = s.mount;
    n.key = staged::key_of(s);
    n.size = static_cast<std::uint64_t>(st.st_size);
    n.mtime = st.st_mtim.tv_sec;
    n.ino = Vfs::ino_of(n.mount, n.key);
    n.dev = Vfs::dev_of(n.mount);
    *out = std::move(n);
    return true;
  } catch (...) {
    return false;
  }
}

int stat_staged_fd(int fd, const Staged& s, struct stat64* st) noexcept {
  if (::fstat64(fd, st) != 0) return errno;
  try {
    st->st_dev = Vfs::dev_of(s.mount);
    st->st_ino = Vfs::ino_of(s.mount, staged::key_of(s));
  } catch (...) {
    return ENOMEM;
  }
  st->st_mode = S_IFREG | 0644;
  // Unlinked while open: what sqlite checks to warn of a vanished file.
  st->st_nlink = staged::find(s.mount, staged::key_of(s)).get() == &s ? 1 : 0;
  return 0;
}

std::unique_lock<std::mutex> offset_lock(OpenFile& f) noexcept {
  if (f.staged) return std::unique_lock<std::mutex>(f.mu);
  return std::unique_lock<std::mutex>(f.mu, std::defer_lock);
}

int commit_closed(const vfile::Detached& d) noexcept { return d.last ? staged::closed(d.last) : 0; }

namespace {

// What F_GETFL shows of a staged fd (the kernel answers it; this is what
// pwrite consults for O_APPEND, kept current by F_SETFL).
constexpr int kStatusFlags = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_LARGEFILE |
                             O_SYNC | O_DSYNC;

// The errors open(2) gives before a staged file is made: the mount root, a
// path that names a directory, O_DIRECTORY, O_TMPFILE.
int open_precheck(const lib::Target& t, const char* raw, int flags) noexcept {
  if (name_too_long(raw)) return ENAMETOOLONG;
  if ((flags & O_TMPFILE) == O_TMPFILE) return EOPNOTSUPP;
  if (t.where.is_root) return EISDIR;
  if ((flags & O_DIRECTORY) != 0 && (flags & O_CREAT) != 0) return EINVAL;
  if (names_directory(raw) || (flags & O_DIRECTORY) != 0) {
    Lookup l = lookup(t, nullptr);
    if (l.error == 0) return l.node.is_dir() ? EISDIR : ENOTDIR;
    return (flags & O_CREAT) != 0 ? EISDIR : l.error;
  }
  return 0;
}

// write/writev: at the shared offset, found after the call under the
// OpenFile's lock.
template <typename Call>
Outcome<ssize_t> write_here(int fd, Call&& call) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f || !f->staged) return fail<ssize_t>(EBADF);
  std::lock_guard<std::mutex> g(f->mu);
  const ssize_t r = call();
  if (r < 0) {
    const int e = errno;
    staged::write_failed(*f->staged, e);
    return fail<ssize_t>(e);
  }
  if (r > 0) {
    const off64_t end = ::lseek64(fd, 0, SEEK_CUR);
    if (end >= r) {
      staged::wrote(*f->staged, static_cast<std::uint64_t>(end - r), static_cast<std::uint64_t>(r));
    } else {
      staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
    }
  }
  return ok(r);
}

// pwrite/pwritev: at offset; with O_APPEND (or RWF_APPEND) Linux writes at
// the end whatever the offset says, found from the size after the call.
template <typename Call>
Outcome<ssize_t> write_at(int fd, off64_t offset, bool append_flag, Call&& call) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f || !f->staged) return fail<ssize_t>(EBADF);
  const bool append = append_flag || (f->status_flags & O_APPEND) != 0;
  std::unique_lock<std::mutex> lock(f->mu, std::defer_lock);
  if (append) lock.lock();
  const ssize_t r = call();
  if (r < 0) {
    const int e = errno;
    staged::write_failed(*f->staged, e);
    return fail<ssize_t>(e);
  }
  if (r > 0) {
    struct stat64 st;
    if (append && ::fstat64(fd, &st) == 0 && st.st_size >= r) {
      staged::wrote(*f->staged, static_cast<std::uint64_t>(st.st_size - r), static_cast<std::uint64_t>(r));
    } else if (append || offset < 0) {
      staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
    } else {
      staged::wrote(*f->staged, static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(r));
    }
  }
  return ok(r);
}

Outcome<ssize_t> do_pwritev2(int fd, const struct iovec* iov, int n, off64_t offset, int flags) noexcept {
  if (offset == -1) return write_here(fd, [&] { return ::pwritev64v2(fd, iov, n, -1, flags); });
  if (offset < 0) return fail<ssize_t>(EINVAL);
  return write_at(fd, offset, (flags & RWF_APPEND) != 0, [&] { return ::pwritev64v2(fd, iov, n, offset, flags); });
}

// A virtual fd that is not staged: opened read-only (or O_PATH).
bool path_only(const OpenFile& f) noexcept { return (f.status_flags & O_PATH) == O_PATH; }

Outcome<int> do_ftruncate(int fd, off64_t len) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (!f->staged) return fail<int>(path_only(*f.get()) ? EBADF : EINVAL);
  if (::ftruncate64(fd, len) != 0) return fail<int>(errno);
  f->staged->file->truncated(static_cast<std::uint64_t>(len));
  return ok(0);
}

Outcome<int> do_fsync(int fd, bool data_only) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (!f->staged) return path_only(*f.get()) ? fail<int>(EBADF) : ok(0);  // nothing to make durable
  if ((data_only ? ::fdatasync(fd) : ::fsync(fd)) != 0) return fail<int>(errno);
  if (int e = staged::sync(*f->staged); e != 0) return fail<int>(e);
  return ok(0);
}

Outcome<int> do_fallocate(int fd, int mode, off64_t offset, off64_t len) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f || !f->staged) return fail<int>(EBADF);
  if (::fallocate64(fd, mode, offset, len) != 0) return fail<int>(errno);
  staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
  return ok(0);
}

Outcome<int> do_posix_fallocate(int fd, off64_t offset, off64_t len) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f || !f->staged) return ok(EBADF);
  const int r = ::posix_fallocate64(fd, offset, len);
  if (r == 0) staged::unseen(*f->staged, StagedFile::Unseen::Anywhere);
  return ok(r);
}

}  // namespace

Outcome<int> open_staged(const std::shared_ptr<Staged>& s, int flags) noexcept {
  if (vfile::in_vfork_child()) return fail<int>(EROFS);  // its state is the parent's
  const int acc = flags & O_ACCMODE;
  if ((flags & O_TRUNC) != 0 && ::truncate64(s->data_path.c_str(), 0) != 0) return fail<int>(errno);
  int fd = ::open(s->data_path.c_str(), acc | (flags & (O_APPEND | O_CLOEXEC | O_NONBLOCK)) | O_NOFOLLOW);
  if (fd < 0) return fail<int>(errno);
  if ((flags & O_TRUNC) != 0) s->file->truncated(0);
  if ((flags & O_APPEND) != 0) (void)::lseek64(fd, 0, SEEK_END);
  try {
    if (!vfile::attach_staged(fd, s, staged::node_of(*s), flags & kStatusFlags)) {
      ::close(fd);
      return fail<int>(ENOMEM);
    }
  } catch (...) {
    ::close(fd);
    return fail<int>(ENOMEM);
  }
  return ok(fd);
}

Outcome<int> open_for_write(const lib::Target& t, const char* raw, int flags) noexcept {
  if (vfile::in_vfork_child()) return fail<int>(EROFS);
  if (int e = open_precheck(t, raw, flags); e != 0) return fail<int>(e);
  if (staged::any()) {
    if (auto s = staged::find(t.where.mount, t.where.key); s != nullptr) {
      if ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) return fail<int>(EEXIST);
      return open_staged(s, flags);
    }
  }
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  try {
    auto made = v->open_for_write(t.where, flags, lib::mounts().local_path(t.where.mount, t.where.key));
    if (!made) return fail<int>(errno_of(made.status()));
    const int fd = (*made)->take_fd();
    auto s = staged::add(std::move(*made));
    if (s == nullptr) {
      ::close(fd);
      return fail<int>(ENOMEM);
    }
    if (!vfile::attach_staged(fd, s, staged::node_of(*s), flags & kStatusFlags)) {
      ::close(fd);
      staged::unlink(*s);
      (void)staged::closed(s);
      return fail<int>(ENOMEM);
    }
    staged::ensure_exit_hook();
    return ok(fd);
  } catch (...) {
    return fail<int>(ENOMEM);
  }
}

}  // namespace objcache::preload::serve

namespace objcache::preload::dispatch {

using namespace serve;

OBJCACHE_SERVE(write, int fd, const void* b, size_t n) {
  return write_here(fd, [&] { return ::write(fd, b, n); });
}
OBJCACHE_SERVE(writev, int fd, const struct iovec* v, int c) {
  return write_here(fd, [&] { return ::writev(fd, v, c); });
}
OBJCACHE_SERVE(pwrite, int fd, const void* b, size_t n, off_t o) {
  return write_at(fd, o, false, [&] { return ::pwrite64(fd, b, n, o); });
}
OBJCACHE_SERVE(pwrite64, int fd, const void* b, size_t n, off64_t o) {
  return write_at(fd, o, false, [&] { return ::pwrite64(fd, b, n, o); });
}
OBJCACHE_SERVE(pwritev, int fd, const struct iovec* v, int c, off_t o) {
  return write_at(fd, o, false, [&] { return ::pwritev64(fd, v, c, o); });
}
OBJCACHE_SERVE(pwritev64, int fd, const struct iovec* v, int c, off64_t o) {
  return write_at(fd, o, false, [&] { return ::pwritev64(fd, v, c, o); });
}
OBJCACHE_SERVE(pwritev2, int fd, const struct iovec* v, int c, off_t o, int f) {
  return do_pwritev2(fd, v, c, o, f);
}
OBJCACHE_SERVE(pwritev64v2, int fd, const struct iovec* v, int c, off64_t o, int f) {
  return do_pwritev2(fd, v, c, o, f);
}
OBJCACHE_SERVE(ftruncate, int fd, off_t len) { return do_ftruncate(fd, len); }
OBJCACHE_SERVE(ftruncate64, int fd, off64_t len) { return do_ftruncate(fd, len); }
OBJCACHE_SERVE(fsync, int fd) { return do_fsync(fd, false); }
OBJCACHE_SERVE(fdatasync, int fd) { return do_fsync(fd, true); }
OBJCACHE_SERVE(fallocate, int fd, int m, off_t o, off_t l) { return do_fallocate(fd, m, o, l); }
OBJCACHE_SERVE(fallocate64, int fd, int m, off64_t o, off64_t l) { return do_fallocate(fd, m, o, l); }
OBJCACHE_SERVE(posix_fallocate, int fd, off_t o, off_t l) { return do_posix_fallocate(fd, o, l); }
OBJCACHE_SERVE(posix_fallocate64, int fd, off64_t o, off64_t l) { return do_posix_fallocate(fd, o, l); }

}  // namespace objcache::preload::dispatch
