// SPDX-License-Identifier: Apache-2.0
// Serving the calls that change names and attributes under a mount. A
// read-only mount answers EROFS (after the lookup errors the kernel gives
// first: EEXIST for a name that exists when creating, ENOENT for a missing
// one when changing it), and nothing reaches the kernel, so no directory
// is ever made on the local disk in its place. A writable mount changes
// the bucket (Vfs: unlink, mkdir, rmdir, rename, truncate); a file this
// process is still writing is renamed or unlinked in its StagedFile. Modes,
// owners and times are accepted as no-ops (objects have none: tar -x and
// cp -a set them); links answer EPERM, extended attributes ENOTSUP, as on
// file systems without them. Between a mount and a local path, or two
// mounts, rename and link answer EXDEV.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>

#include "serve_common.h"

namespace objcache::preload::serve {
namespace {

using dispatch::Outcome;

// Where a path of a *at() call leads, with the kernel's checks on the path
// itself; error is an errno (0: t is under a mount).
struct Where {
  int error = 0;
  lib::Target t;
};

Where where_at(int dirfd, const char* path) noexcept {
  Where w;
  if (path == nullptr) {
    w.error = EFAULT;
  } else if (path[0] == '\0') {
    w.error = ENOENT;
  } else if (name_too_long(path)) {
    w.error = ENAMETOOLONG;
  } else {
    w.t = lib::resolve_at(dirfd, path);
    if (w.t.bad_dirfd) {
      w.error = ENOTDIR;
    } else if (!w.t.where.ours()) {
      w.error = ENOENT;  // left every mount from inside one: the kernel has nothing there
    }
  }
  return w;
}

Outcome<int> done(Result<void> r) noexcept { return r ? ok(0) : fail<int>(errno_of(r.status())); }

// A name is made (mkdir, symlink, link): it must not exist; a read-only
// mount then refuses.
Outcome<int> create_check(const Where& w, const char* path) noexcept {
  Lookup l = lookup(w.t, path);
  if (l.error == 0) return fail<int>(EEXIST);
  if (l.error != ENOENT) return fail<int>(l.error);
  return writable(w.t.where.mount) ? ok(0) : fail<int>(EROFS);
}

// An attribute changes (mode, owner, times): a no-op that exists.
Outcome<int> attribute_of(const Lookup& l) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  return writable(l.node.mount) ? ok(0) : fail<int>(EROFS);
}

Outcome<int> attribute_at(int dirfd, const char* path, int flags) noexcept {
  if (path == nullptr) return attribute_of(lookup_fd(dirfd));  // utimensat(fd, NULL, ...)
  return attribute_of(lookup_at(dirfd, path, flags));
}

Outcome<int> attribute_fd(int fd) noexcept {
  FileRef f = FileRef::acquire(fd);
  if (!f) return fail<int>(EBADF);
  if (!f->staged && (f->status_flags & O_PATH) == O_PATH) return fail<int>(EBADF);
  return writable(f->node.mount) ? ok(0) : fail<int>(EROFS);
}

Outcome<int> xattr_of(const Lookup& l) noexcept {
  if (l.error != 0) return fail<int>(l.error);
  return fail<int>(writable(l.node.mount) ? ENOTSUP : EROFS);
}

Outcome<int> xattr_fd(int fd) noexcept {
  auto a = attribute_fd(fd);
  return a.error != 0 ? a : fail<int>(ENOTSUP);
}

Outcome<int> do_unlink(int dirfd, const char* path) noexcept {
  Where w = where_at(dirfd, path);
  if (w.error != 0) return fail<int>(w.error);
  if (!writable(w.t.where.mount)) return fail<int>(EROFS);
  if (w.t.where.is_root) return fail<int>(EISDIR);
  if (names_directory(path)) {
    Lookup l = lookup(w.t, nullptr);
    if (l.error != 0) return fail<int>(l.error);
    return fail<int>(l.node.is_dir() ? EISDIR : ENOTDIR);
  }
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  if (staged::any()) {
    if (auto s = staged::find(w.t.where.mount, w.t.where.key); s != nullptr) {
      // Written here, not committed: nothing is uploaded; an object that
      // was there before goes too.
      staged::unlink(*s);
      auto r = v->unlink(w.t.where);
      return r || r.status() == Status::NotFound ? ok(0) : fail<int>(errno_of(r.status()));
    }
  }
  return done(v->unlink(w.t.where));
}

Outcome<int> do_rmdir(int dirfd, const char* path) noexcept {
  Where w = where_at(dirfd, path);
  if (w.error != 0) return fail<int>(w.error);
  if (!writable(w.t.where.mount)) return fail<int>(EROFS);
  if (w.t.where.is_root) return fail<int>(EBUSY);
  Lookup l = lookup(w.t, nullptr);
  if (l.error != 0) return fail<int>(l.error);
  if (!l.node.is_dir()) return fail<int>(ENOTDIR);
  // Files still being written here are in no listing yet.
  if (staged::any()) {
    try {
      std::string prefix = w.t.where.key;
      if (prefix.empty() || prefix.back() != '/') prefix += '/';
      if (staged::any_under(w.t.where.mount, prefix)) return fail<int>(ENOTEMPTY);
    } catch (...) {
      return fail<int>(ENOMEM);
    }
  }
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  return done(v->rmdir(w.t.where));
}

Outcome<int> do_mkdir(int dirfd, const char* path) noexcept {
  Where w = where_at(dirfd, path);
  if (w.error != 0) return fail<int>(w.error);
  if (w.t.where.is_root) return fail<int>(EEXIST);
  if (auto c = create_check(w, path); c.error != 0) return c;
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  return done(v->mkdir(w.t.where));
}

// The directory `to` goes into must exist (a staged file is renamed with
// no request, so nobody else checks).
int parent_check(const lib::Target& to) noexcept {
  try {
    std::string p = lib::mounts().local_path(to.where.mount, to.where.key);
    const auto slash = p.rfind('/');
    if (slash == std::string::npos) return ENOENT;
    p.resize(slash == 0 ? 1 : slash);
    Lookup l = lookup(lib::resolve(p.c_str()), nullptr);
    if (l.error != 0) return l.error;
    return l.node.is_dir() ? 0 : ENOTDIR;
  } catch (...) {
    return ENOMEM;
  }
}

// The source is a file this process is still writing: its StagedFile takes
// the new name, free (the object goes there at commit).
Outcome<int> rename_staged(Staged& s, const lib::Target& to, const char* to_path, bool no_replace) noexcept {
  Lookup dst = lookup(to, to_path);
  if (dst.error == 0) {
    if (dst.staged.get() == &s) return ok(0);  // the same file
    if (no_replace) return fail<int>(EEXIST);
    if (dst.node.is_dir()) return fail<int>(EISDIR);
  } else if (dst.error != ENOENT) {
    return fail<int>(dst.error);
  } else if (int e = parent_check(to); e != 0) {
    return fail<int>(e);
  }
  if (int e = staged::rename(s, to.where.key); e != 0) return fail<int>(e);
  if (dst.staged) staged::unlink(*dst.staged);  // replaced: it uploads nothing
  return ok(0);
}

Outcome<int> do_rename(int fromfd, const char* from, int tofd, const char* to, unsigned flags) noexcept {
  if ((flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) != 0) return fail<int>(EINVAL);
  const bool no_replace = (flags & RENAME_NOREPLACE) != 0;
  if (from == nullptr || to == nullptr) return fail<int>(EFAULT);
  const lib::Target a = lib::resolve_at(fromfd, from);
  const lib::Target b = lib::resolve_at(tofd, to);
  if (a.bad_dirfd || b.bad_dirfd) return fail<int>(ENOTDIR);
  if (!a.where.ours() || !b.where.ours() || a.where.mount != b.where.mount) return fail<int>(EXDEV);
  Where wa = where_at(fromfd, from);
  Where wb = where_at(tofd, to);
  if (wa.error != 0) return fail<int>(wa.error);
  if (wb.error != 0) return fail<int>(wb.error);
  if (!writable(a.where.mount)) return fail<int>(EROFS);
  if (a.where.is_root || b.where.is_root) return fail<int>(EBUSY);
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  try {
    if (staged::any()) {
      if (auto s = staged::find(a.where.mount, a.where.key); s != nullptr) {
        return rename_staged(*s, b, to, no_replace);
      }
      // A directory with files still being written in it: they would be
      // uploaded under their old names after it moved.
      std::string prefix = a.where.key;
      if (prefix.empty() || prefix.back() != '/') prefix += '/';
      if (staged::any_under(a.where.mount, prefix)) return fail<int>(EBUSY);
    }
    auto dst = staged::any() ? staged::find(b.where.mount, b.where.key) : nullptr;
    if (dst != nullptr && no_replace) return fail<int>(EEXIST);
    auto r = v->rename(a.where, b.where, no_replace);
    if (!r) return fail<int>(errno_of(r.status()));
    if (dst != nullptr) staged::unlink(*dst);  // replaced by the renamed object
    return ok(0);
  } catch (...) {
    return fail<int>(ENOMEM);
  }
}

Outcome<int> do_link(int fromfd, const char* from, int tofd, const char* to) noexcept {
  if (from == nullptr || to == nullptr) return fail<int>(EFAULT);
  const lib::Target a = lib::resolve_at(fromfd, from);
  const lib::Target b = lib::resolve_at(tofd, to);
  if (!a.where.ours() || !b.where.ours() || a.where.mount != b.where.mount) return fail<int>(EXDEV);
  Where wa = where_at(fromfd, from);
  if (wa.error != 0) return fail<int>(wa.error);
  Lookup src = lookup(a, from);
  if (src.error != 0) return fail<int>(src.error);
  Where wb = where_at(tofd, to);
  if (wb.error != 0) return fail<int>(wb.error);
  if (auto c = create_check(wb, to); c.error != 0) return c;
  return fail<int>(EPERM);  // objects have no links
}

Outcome<int> do_symlink(int dirfd, const char* path) noexcept {
  Where w = where_at(dirfd, path);
  if (w.error != 0) return fail<int>(w.error);
  if (auto c = create_check(w, path); c.error != 0) return c;
  return fail<int>(EPERM);
}

Outcome<int> do_truncate(const char* path, off64_t len) noexcept {
  if (len < 0) return fail<int>(EINVAL);
  Where w = where_at(AT_FDCWD, path);
  if (w.error != 0) return fail<int>(w.error);
  Lookup l = lookup(w.t, path);
  if (l.error != 0) return fail<int>(l.error);
  if (l.node.is_dir()) return fail<int>(EISDIR);
  if (!writable(w.t.where.mount)) return fail<int>(EROFS);
  if (l.staged) {
    if (::truncate64(l.staged->data_path.c_str(), len) != 0) return fail<int>(errno);
    l.staged->file->truncated(static_cast<std::uint64_t>(len));
    return ok(0);
  }
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<int>(err);
  return done(v->truncate(w.t.where, static_cast<std::uint64_t>(len)));
}

}  // namespace
}  // namespace objcache::preload::serve

namespace objcache::preload::dispatch {

using namespace serve;

OBJCACHE_SERVE(truncate, const char* p, off_t len) { return do_truncate(p, len); }
OBJCACHE_SERVE(truncate64, const char* p, off64_t len) { return do_truncate(p, len); }
OBJCACHE_SERVE(unlink, const char* p) { return do_unlink(AT_FDCWD, p); }
OBJCACHE_SERVE(unlinkat, int d, const char* p, int f) {
  if ((f & ~AT_REMOVEDIR) != 0) return fail<int>(EINVAL);
  return (f & AT_REMOVEDIR) != 0 ? do_rmdir(d, p) : do_unlink(d, p);
}
OBJCACHE_SERVE(mkdir, const char* p, mode_t) { return do_mkdir(AT_FDCWD, p); }
OBJCACHE_SERVE(mkdirat, int d, const char* p, mode_t) { return do_mkdir(d, p); }
OBJCACHE_SERVE(rmdir, const char* p) { return do_rmdir(AT_FDCWD, p); }
OBJCACHE_SERVE(rename, const char* a, const char* b) { return do_rename(AT_FDCWD, a, AT_FDCWD, b, 0); }
OBJCACHE_SERVE(renameat, int da, const char* a, int db, const char* b) { return do_rename(da, a, db, b, 0); }
OBJCACHE_SERVE(renameat2, int da, const char* a, int db, const char* b, unsigned int f) {
  return do_rename(da, a, db, b, f);
}
OBJCACHE_SERVE(link, const char* a, const char* b) { return do_link(AT_FDCWD, a, AT_FDCWD, b); }
OBJCACHE_SERVE(linkat, int da, const char* a, int db, const char* b, int) { return do_link(da, a, db, b); }
OBJCACHE_SERVE(symlink, const char*, const char* p) { return do_symlink(AT_FDCWD, p); }
OBJCACHE_SERVE(symlinkat, const char*, int d, const char* p) { return do_symlink(d, p); }
OBJCACHE_SERVE(utimensat, int d, const char* p, const struct timespec*, int f) { return attribute_at(d, p, f); }
OBJCACHE_SERVE(futimens, int fd, const struct timespec*) { return attribute_fd(fd); }
OBJCACHE_SERVE(utimes, const char* p, const struct timeval*) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(utime, const char* p, const struct utimbuf*) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(lutimes, const char* p, const struct timeval*) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(futimes, int fd, const struct timeval*) { return attribute_fd(fd); }
OBJCACHE_SERVE(chmod, const char* p, mode_t) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(fchmod, int fd, mode_t) { return attribute_fd(fd); }
OBJCACHE_SERVE(fchmodat, int d, const char* p, mode_t, int f) { return attribute_at(d, p, f); }
OBJCACHE_SERVE(chown, const char* p, uid_t, gid_t) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(lchown, const char* p, uid_t, gid_t) { return attribute_of(lookup_path(p)); }
OBJCACHE_SERVE(fchown, int fd, uid_t, gid_t) { return attribute_fd(fd); }
OBJCACHE_SERVE(fchownat, int d, const char* p, uid_t, gid_t, int f) { return attribute_at(d, p, f); }
OBJCACHE_SERVE(setxattr, const char* p, const char*, const void*, size_t, int) {
  return xattr_of(lookup_path(p));
}
OBJCACHE_SERVE(lsetxattr, const char* p, const char*, const void*, size_t, int) {
  return xattr_of(lookup_path(p));
}
OBJCACHE_SERVE(fsetxattr, int fd, const char*, const void*, size_t, int) { return xattr_fd(fd); }
OBJCACHE_SERVE(removexattr, const char* p, const char*) { return xattr_of(lookup_path(p)); }
OBJCACHE_SERVE(lremovexattr, const char* p, const char*) { return xattr_of(lookup_path(p)); }
OBJCACHE_SERVE(fremovexattr, int fd, const char*) { return xattr_fd(fd); }

}  // namespace objcache::preload::dispatch
