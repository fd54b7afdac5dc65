// SPDX-License-Identifier: Apache-2.0
// Serving path calls under a mount: open, the stat family, statfs, access,
// readlink, realpath, xattrs and the current directory. An open that would
// write goes to serve_write.cpp on a writable mount and answers EROFS on a
// read-only one; a path this process is writing is answered from its
// staged file.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "serve_common.h"

namespace objcache::preload::serve {

static_assert(sizeof(struct stat) == sizeof(struct stat64), "stat and stat64 must share a layout");
static_assert(sizeof(struct statfs) == sizeof(struct statfs64), "statfs and statfs64 must share a layout");
static_assert(sizeof(struct statvfs) == sizeof(struct statvfs64), "statvfs and statvfs64 must share a layout");

int errno_of(Status s) noexcept {
  int e = to_errno(s);
  return e != 0 ? e : EIO;
}

// The kernel's checks on a path as written, before any lookup: a component
// longer than NAME_MAX is ENAMETOOLONG.
bool name_too_long(const char* path) noexcept {
  std::size_t run = 0;
  for (const char* c = path; *c != '\0'; ++c) {
    run = *c == '/' ? 0 : run + 1;
    if (run > NAME_MAX) return true;
  }
  return false;
}

// A path that ends in '/' (or "/.", or is ".") names a directory: a file
// found there is ENOTDIR, as the kernel says.
bool names_directory(const char* path) noexcept {
  const std::size_t n = std::strlen(path);
  if (n == 0) return false;
  if (path[n - 1] == '/') return true;
  return (n == 1 && path[0] == '.') || (n >= 2 && path[n - 1] == '.' && path[n - 2] == '/');
}

namespace {

std::string parent_key(const std::string& key) {
  std::string k = key;
  while (!k.empty() && k.back() == '/') k.pop_back();
  const auto slash = k.rfind('/');
  return slash == std::string::npos ? std::string() : k.substr(0, slash + 1);
}

// A key that is not there: ENOTDIR when the nearest ancestor that exists
// (below the mount root) is a file, as the kernel answers "file/x".
int missing_errno(Vfs& v, const Resolved& where) noexcept {
  try {
    const std::string& root = v.mounts().mounts()[static_cast<std::size_t>(where.mount)].source.prefix;
    Resolved up = where;
    up.is_root = false;
    for (int depth = 0; depth < 64; ++depth) {
      up.key = parent_key(up.key);
      if (up.key.size() <= root.size()) return ENOENT;  // reached the mount root, a directory
      auto n = v.stat(up);
      if (n) return n->is_dir() ? ENOENT : ENOTDIR;
      if (n.status() != Status::NotFound) return ENOENT;
    }
  } catch (...) {
  }
  return ENOENT;
}

}  // namespace

Lookup lookup(const lib::Target& t, const char* raw_path) noexcept {
  Lookup out;
  if (raw_path != nullptr && name_too_long(raw_path)) {
    out.error = ENAMETOOLONG;
    return out;
  }
  if (t.is_above()) {
    // A directory above mounts that the disk does not have.
    out.node.kind = NodeKind::Directory;
    out.node.mount = -1;
    out.node.key = t.above.path;
    out.node.ino = Vfs::ino_of(-1, t.above.path);
    out.node.dev = Vfs::dev_of(-1);
    return out;
  }
  if (t.bad_dirfd) {
    out.error = ENOTDIR;
    return out;
  }
  if (!t.where.ours()) {
    out.error = ENOENT;
    return out;
  }
  if (staged::any()) {
    if (auto s = staged::find(t.where.mount, t.where.key); s != nullptr) {
      if (raw_path != nullptr && names_directory(raw_path)) {
        out.error = ENOTDIR;
      } else if (!staged_node(*s, -1, &out.node)) {
        out.error = EIO;
      } else {
        out.staged = std::move(s);
      }
      return out;
    }
  }
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) {
    out.error = err;
    return out;
  }
  auto n = v->stat(t.where);
  if (!n) {
    out.error = n.status() == Status::NotFound ? missing_errno(*v, t.where) : errno_of(n.status());
    return out;
  }
  if (!n->is_dir() && raw_path != nullptr && names_directory(raw_path)) {
    out.error = ENOTDIR;
    return out;
  }
  out.node = std::move(*n);
  return out;
}

Lookup lookup_path(const char* path) noexcept {
  if (path == nullptr) return Lookup{EFAULT, {}, {}};
  if (path[0] == '\0') return Lookup{ENOENT, {}, {}};
  return lookup(lib::resolve(path), path);
}

Lookup lookup_fd(int fd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return Lookup{EBADF, {}, {}};
  try {
    if (f->staged) {
      Lookup l{0, {}, f->staged};
      if (!staged_node(*f->staged, fd, &l.node)) l.error = EIO;
      return l;
    }
    return Lookup{0, f->node, {}};
  } catch (...) {
    return Lookup{ENOMEM, {}, {}};
  }
}

Lookup lookup_at(int dirfd, const char* path, int flags) noexcept {
  if (path == nullptr) return Lookup{EFAULT, {}, {}};
  if (path[0] == '\0') {
    if ((flags & AT_EMPTY_PATH) == 0) return Lookup{ENOENT, {}, {}};
    return lookup_fd(dirfd);
  }
  return lookup(lib::resolve_at(dirfd, path), path);
}

bool writable(int m) noexcept {
  const auto& all = lib::mounts().mounts();
  return m >= 0 && static_cast<std::size_t>(m) < all.size() && all[static_cast<std::size_t>(m)].writable;
}

void fill_stat(const Node& n, struct stat64* st) noexcept {
  std::memset(st, 0, sizeof *st);
  st->st_dev = n.dev;
  st->st_ino = n.ino;
  st->st_nlink = n.is_dir() ? 2 : 1;
  // The owner may write under a writable mount (cp -a, tar and rm look).
  const mode_t w = writable(n.mount) ? 0200 : 0;
  st->st_mode = n.is_dir() ? (S_IFDIR | 0555 | w) : (S_IFREG | 0444 | w);
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_size = static_cast<off64_t>(n.size);
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt64_t>((n.size + 511) / 512);
  st->st_atim.tv_sec = n.mtime;
  st->st_mtim.tv_sec = n.mtime;
  st->st_ctim.tv_sec = n.mtime;
}

void fill_stat(const Node& n, struct stat* st) noexcept {
  struct stat64 s64;
  fill_stat(n, &s64);
  std::memcpy(st, &s64, sizeof *st);
}

namespace {

using dispatch::Outcome;

constexpr long kFsMagic = 0x6f626a63;  // "objc"

bool wants_write(int flags) noexcept {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) != 0 ||
         (flags & O_TMPFILE) == O_TMPFILE;
}

// Opens what a lookup found, for reading.
Outcome<int> open_found(Lookup&& l, int flags) noexcept {
  if ((flags & O_DIRECTORY) != 0 && !l.node.is_dir()) return fail<int>(ENOTDIR);
  if (l.staged) return open_staged(l.staged, flags);
  // The mount's prefetch starts with the open (an O_PATH open reads nothing).
  if (!l.node.is_dir() && (flags & O_PATH) == 0) {
    int e = 0;
    if (Vfs* v = lib::vfs(&e); v != nullptr && !vfile::in_vfork_child()) v->opened(l.node);
  }
  int fd = vfile::open_node(std::move(l.node), flags);
  if (fd < 0) return fail<int>(-fd);
  return ok(fd);
}

}  // namespace

dispatch::Outcome<int> open_at(int dirfd, const char* path, int flags) noexcept {
  if (path == nullptr) return fail<int>(EFAULT);
  if (path[0] == '\0') return fail<int>(ENOENT);
  const lib::Target t = lib::resolve_at(dirfd, path);
  if (t.where.ours() && !t.bad_dirfd && writable(t.where.mount) && wants_write(flags)) {
    // O_RDONLY | O_CREAT only creates: a file that exists is opened to read.
    const bool creates_only = (flags & O_ACCMODE) == O_RDONLY && (flags & O_TRUNC) == 0 &&
                              (flags & O_TMPFILE) != O_TMPFILE;
    if (!creates_only) return open_for_write(t, path, flags);
    Lookup l = lookup(t, path);
    if (l.error == ENOENT) return open_for_write(t, path, flags);
    if (l.error != 0) return fail<int>(l.error);
    if ((flags & O_EXCL) != 0) return fail<int>(EEXIST);
    return open_found(std::move(l), flags & ~(O_CREAT | O_APPEND));
  }
  Lookup l = lookup(t, path);
  if (l.error == ENOENT && (flags & O_CREAT) != 0) return fail<int>(EROFS);
  if (l.error != 0) return fail<int>(l.error);
  if ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) return fail<int>(EEXIST);
  if (wants_write(flags)) return fail<int>(l.node.is_dir() ? EISDIR : EROFS);
  return open_found(std::move(l), flags);
}

namespace {

template <typename St>
Outcome<int> stat_path(const char* path, St* buf) noexcept {
  Lookup l = lookup_path(path);
  if (l.error != 0) return fail<int>(l.error);
  fill_stat(l.node, buf);
  return ok(0);
}

// fstat is on every open's path (Python calls it once per file): fill from
// the open file's node, with no copy of it.
template <typename St>
Outcome<int> stat_fd(int fd, St* buf) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (f->staged) {
    struct stat64 st;
    if (int e = stat_staged_fd(fd, *f->staged, &st); e != 0) return fail<int>(e);
    std::memcpy(buf, &st, sizeof *buf);
    return ok(0);
  }
  fill_stat(f->node, buf);
  return ok(0);
}

template <typename St>
Outcome<int> stat_at(int dirfd, const char* path, St* buf, int flags) noexcept {
  Lookup l = lookup_at(dirfd, path, flags);
  if (l.error != 0) return fail<int>(l.error);
  fill_stat(l.node, buf);
  return ok(0);
}

Outcome<int> do_statx(int dirfd, const char* path, int flags, struct statx* buf) noexcept {
  Lookup l = lookup_at(dirfd, path, flags);
  if (l.error != 0) return fail<int>(l.error);
  struct stat64 st;
  fill_stat(l.node, &st);
  std::memset(buf, 0, sizeof *buf);
  buf->stx_mask = STATX_BASIC_STATS;
  buf->stx_blksize = static_cast<__u32>(st.st_blksize);
  buf->stx_nlink = static_cast<__u32>(st.st_nlink);
  buf->stx_uid = st.st_uid;
  buf->stx_gid = st.st_gid;
  buf->stx_mode = static_cast<__u16>(st.st_mode);
  buf->stx_ino = st.st_ino;
  buf->stx_size = static_cast<__u64>(st.st_size);
  buf->stx_blocks = static_cast<__u64>(st.st_blocks);
  buf->stx_atime.tv_sec = st.st_atim.tv_sec;
  buf->stx_mtime.tv_sec = st.st_mtim.tv_sec;
  buf->stx_ctime.tv_sec = st.st_ctim.tv_sec;
  buf->stx_dev_major = ::major(st.st_dev);
  buf->stx_dev_minor = ::minor(st.st_dev);
  return ok(0);
}

void fill_statfs(struct statfs64* s, bool read_only) noexcept {
  std::memset(s, 0, sizeof *s);
  s->f_type = kFsMagic;
  s->f_bsize = 4096;
  s->f_blocks = 1ull << 40;  // "very large": a bucket has no fixed size
  s->f_files = 1ull << 40;
  s->f_namelen = 255;
  s->f_frsize = 4096;
  s->f_flags = (read_only ? ST_RDONLY : 0) | ST_NOSUID | ST_NODEV;
}

template <typename Sfs>
Outcome<int> statfs_of(const Lookup& l, Sfs* buf) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  struct statfs64 s;
  fill_statfs(&s, !writable(l.node.mount));
  std::memcpy(buf, &s, sizeof *buf);
  return ok(0);
}

template <typename Svfs>
Outcome<int> statvfs_of(const Lookup& l, Svfs* buf) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  struct statvfs64 s;
  std::memset(&s, 0, sizeof s);
  s.f_bsize = 4096;
  s.f_frsize = 4096;
  s.f_blocks = 1ull << 40;
  s.f_files = 1ull << 40;
  s.f_fsid = static_cast<unsigned long>(kFsMagic);
  s.f_flag = (writable(l.node.mount) ? 0 : ST_RDONLY) | ST_NOSUID | ST_NODEV;
  s.f_namemax = 255;
  std::memcpy(buf, &s, sizeof *buf);
  return ok(0);
}

Outcome<int> access_of(const Lookup& l, int mode) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  if ((mode & W_OK) != 0 && !writable(l.node.mount)) return fail<int>(EROFS);
  if ((mode & X_OK) != 0 && !l.node.is_dir()) return fail<int>(EACCES);
  return ok(0);
}

Outcome<ssize_t> readlink_of(const Lookup& l) noexcept {
  if (l.error != 0) return fail<ssize_t>(l.error);
  return fail<ssize_t>(EINVAL);  // nothing under a mount is a symbolic link
}

// The canonical local path of a node ("/mnt/data/a/b", no trailing '/').
std::string canonical(const Node& n) {
  std::string p = lib::mounts().local_path(n.mount, n.key);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Outcome<char*> realpath_of(const char* path, char* resolved) noexcept {
  Lookup l = lookup_path(path);
  if (l.error != 0) return fail<char*>(l.error);
  try {
    std::string p = canonical(l.node);
    if (p.empty() || p.size() >= PATH_MAX) return fail<char*>(ENAMETOOLONG);
    if (resolved == nullptr) {
      resolved = static_cast<char*>(std::malloc(p.size() + 1));
      if (resolved == nullptr) return fail<char*>(ENOMEM);
    }
    std::memcpy(resolved, p.c_str(), p.size() + 1);
    return ok(resolved);
  } catch (...) {
    return fail<char*>(ENOMEM);
  }
}

Outcome<ssize_t> getxattr_of(const Lookup& l) noexcept {
  if (l.error != 0) return fail<ssize_t>(l.error);
  return fail<ssize_t>(ENODATA);
}

Outcome<ssize_t> listxattr_of(const Lookup& l) noexcept {
  if (l.error != 0) return fail<ssize_t>(l.error);
  return ok<ssize_t>(0);
}

Outcome<int> chdir_to(const Lookup& l) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  if (!l.node.is_dir()) return fail<int>(ENOTDIR);
  int empty = lib::empty_dir_fd();
  if (empty < 0 || ::fchdir(empty) != 0) return fail<int>(EIO);
  try {
    lib::set_virtual_cwd(canonical(l.node));
  } catch (...) {
    return fail<int>(ENOMEM);
  }
  return ok(0);
}

Outcome<char*> getcwd_into(char* buf, size_t size) noexcept {
  std::string cwd = lib::virtual_cwd();
  if (cwd.empty()) {
    char* r = ::getcwd(buf, size);
    return r != nullptr ? ok(r) : fail<char*>(errno);
  }
  if (buf == nullptr) {
    size_t n = size == 0 ? cwd.size() + 1 : size;
    if (n < cwd.size() + 1) return fail<char*>(ERANGE);
    buf = static_cast<char*>(std::malloc(n));
    if (buf == nullptr) return fail<char*>(ENOMEM);
  } else if (size == 0) {
    return fail<char*>(EINVAL);
  } else if (size < cwd.size() + 1) {
    return fail<char*>(ERANGE);
  }
  std::memcpy(buf, cwd.c_str(), cwd.size() + 1);
  return ok(buf);
}

}  // namespace
}  // namespace objcache::preload::serve

namespace objcache::preload::dispatch {

using namespace serve;

// ---- open ---------------------------------------------------------------------
OBJCACHE_SERVE(open, int d, const char* p, int f, mode_t) { return open_at(d, p, f); }
OBJCACHE_SERVE(open64, int d, const char* p, int f, mode_t) { return open_at(d, p, f); }
OBJCACHE_SERVE(openat, int d, const char* p, int f, mode_t) { return open_at(d, p, f); }
OBJCACHE_SERVE(openat64, int d, const char* p, int f, mode_t) { return open_at(d, p, f); }
OBJCACHE_SERVE(__open_2, int d, const char* p, int f) { return open_at(d, p, f); }
OBJCACHE_SERVE(__open64_2, int d, const char* p, int f) { return open_at(d, p, f); }
OBJCACHE_SERVE(__openat_2, int d, const char* p, int f) { return open_at(d, p, f); }
OBJCACHE_SERVE(__openat64_2, int d, const char* p, int f) { return open_at(d, p, f); }
OBJCACHE_SERVE(creat, const char* p, mode_t) { return open_at(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC); }
OBJCACHE_SERVE(creat64, const char* p, mode_t) { return open_at(AT_FDCWD, p, O_CREAT | O_WRONLY | O_TRUNC); }

// ---- stat ---------------------------------------------------------------------
OBJCACHE_SERVE(stat, const char* p, struct stat* b) { return stat_path(p, b); }
OBJCACHE_SERVE(stat64, const char* p, struct stat64* b) { return stat_path(p, b); }
OBJCACHE_SERVE(lstat, const char* p, struct stat* b) { return stat_path(p, b); }
OBJCACHE_SERVE(lstat64, const char* p, struct stat64* b) { return stat_path(p, b); }
OBJCACHE_SERVE(fstat, int fd, struct stat* b) { return stat_fd(fd, b); }
OBJCACHE_SERVE(fstat64, int fd, struct stat64* b) { return stat_fd(fd, b); }
OBJCACHE_SERVE(fstatat, int d, const char* p, struct stat* b, int f) { return stat_at(d, p, b, f); }
OBJCACHE_SERVE(fstatat64, int d, const char* p, struct stat64* b, int f) { return stat_at(d, p, b, f); }
OBJCACHE_SERVE(statx, int d, const char* p, int f, unsigned int, struct statx* b) {
  return do_statx(d, p, f, b);
}
OBJCACHE_SERVE(__xstat, int, const char* p, struct stat* b) { return stat_path(p, b); }
OBJCACHE_SERVE(__xstat64, int, const char* p, struct stat64* b) { return stat_path(p, b); }
OBJCACHE_SERVE(__lxstat, int, const char* p, struct stat* b) { return stat_path(p, b); }
OBJCACHE_SERVE(__lxstat64, int, const char* p, struct stat64* b) { return stat_path(p, b); }
OBJCACHE_SERVE(__fxstat, int, int fd, struct stat* b) { return stat_fd(fd, b); }
OBJCACHE_SERVE(__fxstat64, int, int fd, struct stat64* b) { return stat_fd(fd, b); }
OBJCACHE_SERVE(__fxstatat, int, int d, const char* p, struct stat* b, int f) { return stat_at(d, p, b, f); }
OBJCACHE_SERVE(__fxstatat64, int, int d, const char* p, struct stat64* b, int f) {
  return stat_at(d, p, b, f);
}
OBJCACHE_SERVE(statfs, const char* p, struct statfs* b) { return statfs_of(lookup_path(p), b); }
OBJCACHE_SERVE(statfs64, const char* p, struct statfs64* b) { return statfs_of(lookup_path(p), b); }
OBJCACHE_SERVE(fstatfs, int fd, struct statfs* b) { return statfs_of(lookup_fd(fd), b); }
OBJCACHE_SERVE(fstatfs64, int fd, struct statfs64* b) { return statfs_of(lookup_fd(fd), b); }
OBJCACHE_SERVE(statvfs, const char* p, struct statvfs* b) { return statvfs_of(lookup_path(p), b); }
OBJCACHE_SERVE(statvfs64, const char* p, struct statvfs64* b) { return statvfs_of(lookup_path(p), b); }
OBJCACHE_SERVE(fstatvfs, int fd, struct statvfs* b) { return statvfs_of(lookup_fd(fd), b); }
OBJCACHE_SERVE(fstatvfs64, int fd, struct statvfs64* b) { return statvfs_of(lookup_fd(fd), b); }

// ---- access, links, xattrs ----------------------------------------------------
OBJCACHE_SERVE(access, const char* p, int m) { return access_of(lookup_path(p), m); }
OBJCACHE_SERVE(faccessat, int d, const char* p, int m, int f) { return access_of(lookup_at(d, p, f), m); }
OBJCACHE_SERVE(euidaccess, const char* p, int m) { return access_of(lookup_path(p), m); }
OBJCACHE_SERVE(eaccess, const char* p, int m) { return access_of(lookup_path(p), m); }
OBJCACHE_SERVE(readlink, const char* p, char*, size_t) { return readlink_of(lookup_path(p)); }
OBJCACHE_SERVE(readlinkat, int d, const char* p, char*, size_t) { return readlink_of(lookup_at(d, p, 0)); }
OBJCACHE_SERVE(__readlink_chk, const char* p, char*, size_t len, size_t buflen) {
  if (len > buflen) __chk_fail();
  return readlink_of(lookup_path(p));
}
OBJCACHE_SERVE(__readlinkat_chk, int d, const char* p, char*, size_t len, size_t buflen) {
  if (len > buflen) __chk_fail();
  return readlink_of(lookup_at(d, p, 0));
}
OBJCACHE_SERVE(realpath, const char* p, char* r) { return realpath_of(p, r); }
OBJCACHE_SERVE(__realpath_chk, const char* p, char* r, size_t rlen) {
  if (r != nullptr && rlen < PATH_MAX) __chk_fail();
  return realpath_of(p, r);
}
OBJCACHE_SERVE(canonicalize_file_name, const char* p) { return realpath_of(p, nullptr); }
OBJCACHE_SERVE(getxattr, const char* p, const char*, void*, size_t) { return getxattr_of(lookup_path(p)); }
OBJCACHE_SERVE(lgetxattr, const char* p, const char*, void*, size_t) { return getxattr_of(lookup_path(p)); }
OBJCACHE_SERVE(fgetxattr, int fd, const char*, void*, size_t) { return getxattr_of(lookup_fd(fd)); }
OBJCACHE_SERVE(listxattr, const char* p, char*, size_t) { return listxattr_of(lookup_path(p)); }
OBJCACHE_SERVE(llistxattr, const char* p, char*, size_t) { return listxattr_of(lookup_path(p)); }
OBJCACHE_SERVE(flistxattr, int fd, char*, size_t) { return listxattr_of(lookup_fd(fd)); }

// ---- the current directory ------------------------------------------------------
// chdir and fchdir always come here while mounts are configured (see
// entry_path_misc.cpp): leaving a mount must clear the virtual cwd, and any
// chdir must refresh the cached real one.
OBJCACHE_SERVE(chdir, const char* p) {
  if (p != nullptr && lib::resolve(p).where.ours()) return chdir_to(lookup_path(p));
  if (::chdir(p) != 0) return fail<int>(errno);
  lib::set_virtual_cwd("");
  return ok(0);
}
OBJCACHE_SERVE(fchdir, int fd) {
  if (dispatch::fd_is_ours(fd)) return chdir_to(lookup_fd(fd));
  if (::fchdir(fd) != 0) return fail<int>(errno);
  lib::set_virtual_cwd("");
  return ok(0);
}
OBJCACHE_SERVE(getcwd, char* buf, size_t size) { return getcwd_into(buf, size); }
OBJCACHE_SERVE(__getcwd_chk, char* buf, size_t size, size_t buflen) {
  if (size > buflen) __chk_fail();
  return getcwd_into(buf, size);
}

}  // namespace objcache::preload::dispatch
