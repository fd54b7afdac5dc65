// SPDX-License-Identifier: Apache-2.0
// Directory streams under a mount: a shim-owned DIR (never glibc's), over a
// listing from the Vfs, holding a real placeholder directory fd that dirfd()
// returns (find and du openat/fstatat relative to it; those calls are ours
// because the fd is). "." and ".." come first, as from the kernel.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "serve_common.h"

namespace objcache::preload {

namespace {

static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "dirent and dirent64 must share a layout");

struct ShimDir {
  int fd = -1;  // a virtual directory fd (registered in the fd table)
  Node node;
  std::shared_ptr<const Listing> entries;
  long pos = 0;  // 0 ".", 1 "..", then entries[pos - 2]
  std::mutex mu;
  struct dirent64 ent;
};

ShimDir* find_dir(const DIR* d) {
  return dispatch::dir_is_ours_slow(d) ? reinterpret_cast<ShimDir*>(const_cast<DIR*>(d)) : nullptr;
}

// The next entry (skipping names a dirent cannot hold), or false at the end.
bool next_entry(ShimDir& d, struct dirent64* out) {
  for (;;) {
    const long pos = d.pos;
    const long count = static_cast<long>(d.entries->size()) + 2;
    if (pos >= count) return false;
    d.pos = pos + 1;
    std::memset(out, 0, offsetof(struct dirent64, d_name));
    out->d_off = pos + 1;
    out->d_reclen = sizeof(struct dirent64);
    if (pos < 2) {
      out->d_ino = pos == 0 ? d.node.ino : Vfs::ino_of(d.node.mount, d.node.key + "..");
      out->d_type = DT_DIR;
      std::strcpy(out->d_name, pos == 0 ? "." : "..");
      return true;
    }
    const DirEntry& e = (*d.entries)[static_cast<std::size_t>(pos - 2)];
    if (e.name.size() >= sizeof out->d_name) continue;
    out->d_ino = e.ino;
    out->d_type = e.kind == NodeKind::Directory ? DT_DIR : DT_REG;
    std::memcpy(out->d_name, e.name.c_str(), e.name.size() + 1);
    return true;
  }
}

using dispatch::Outcome;
using serve::fail;
using serve::ok;

// A DIR over the virtual directory fd (which it then owns).
Outcome<DIR*> dir_from_fd(int fd) noexcept {
  serve::Lookup l = serve::lookup_fd(fd);
  if (l.error != 0) return fail<DIR*>(l.error);
  if (!l.node.is_dir()) return fail<DIR*>(ENOTDIR);
  int err = 0;
  Vfs* v = lib::vfs(&err);
  if (v == nullptr) return fail<DIR*>(err);
  auto listing = lib::list(*v, l.node);
  if (!listing) return fail<DIR*>(serve::errno_of(listing.status()));
  auto* d = new (std::nothrow) ShimDir;
  if (d == nullptr) return fail<DIR*>(ENOMEM);
  d->fd = fd;
  d->node = std::move(l.node);
  d->entries = std::move(*listing);
  if (!dispatch::register_dir(reinterpret_cast<DIR*>(d))) {
    delete d;
    return fail<DIR*>(ENOMEM);
  }
  return ok(reinterpret_cast<DIR*>(d));
}

Outcome<DIR*> open_dir_at(int dirfd, const char* path) noexcept {
  serve::Lookup l = serve::lookup_at(dirfd, path, 0);
  if (l.error != 0) return fail<DIR*>(l.error);
  if (!l.node.is_dir()) return fail<DIR*>(ENOTDIR);
  int fd = vfile::open_node(std::move(l.node), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail<DIR*>(-fd);
  auto out = dir_from_fd(fd);
  if (out.value == nullptr) {
    (void)vfile::detach(fd);
    ::close(fd);
  }
  return out;
}

template <typename Ent>
Outcome<Ent*> read_dir(DIR* dir) noexcept {
  ShimDir* d = find_dir(dir);
  if (d == nullptr) return fail<Ent*>(EBADF);
  std::lock_guard<std::mutex> g(d->mu);
  if (!next_entry(*d, &d->ent)) return {nullptr, 0};  // the end: errno untouched
  return ok(reinterpret_cast<Ent*>(&d->ent));
}

template <typename Ent>
Outcome<int> read_dir_r(DIR* dir, Ent* entry, Ent** result) noexcept {
  ShimDir* d = find_dir(dir);
  if (d == nullptr) return ok(EBADF);
  std::lock_guard<std::mutex> g(d->mu);
  if (!next_entry(*d, reinterpret_cast<struct dirent64*>(entry))) {
    *result = nullptr;
  } else {
    *result = entry;
  }
  return ok(0);
}

Outcome<int> close_dir(DIR* dir) noexcept {
  if (!dispatch::unregister_dir(dir)) return fail<int>(EBADF);
  auto* d = reinterpret_cast<ShimDir*>(dir);
  (void)vfile::detach(d->fd);
  int r = ::close(d->fd);
  int e = errno;
  delete d;
  return r == 0 ? ok(0) : fail<int>(e);
}

// scandir: every entry through select, copied into malloc'd dirents, sorted
// with cmp; the caller frees each and the array.
template <typename Ent, typename Sel, typename Cmp>
Outcome<int> scan_dir(int dirfd, const char* path, Ent*** names, Sel select, Cmp cmp) noexcept {
  auto opened = open_dir_at(dirfd, path);
  if (opened.value == nullptr) return fail<int>(opened.error);
  ShimDir* d = reinterpret_cast<ShimDir*>(opened.value);
  Ent** list = nullptr;
  std::size_t n = 0, cap = 0;
  struct dirent64 ent;
  int err = 0;
  while (next_entry(*d, &ent)) {
    const auto* e = reinterpret_cast<const Ent*>(&ent);
    if (select != nullptr && select(e) == 0) continue;
    if (n == cap) {
      cap = cap == 0 ? 64 : cap * 2;
      auto* grown = static_cast<Ent**>(std::realloc(list, cap * sizeof(Ent*)));
      if (grown == nullptr) {
        err = ENOMEM;
        break;
      }
      list = grown;
    }
    auto* copy = static_cast<Ent*>(std::malloc(sizeof(Ent)));
    if (copy == nullptr) {
      err = ENOMEM;
      break;
    }
    std::memcpy(copy, e, sizeof(Ent));
    list[n++] = copy;
  }
  (void)close_dir(opened.value);
  if (err != 0) {
    for (std::size_t i = 0; i < n; ++i) std::free(list[i]);
    std::free(list);
    return fail<int>(err);
  }
  if (cmp != nullptr && n > 1) {
    using QsortCmp = int (*)(const void*, const void*);
    std::qsort(list, n, sizeof(Ent*), reinterpret_cast<QsortCmp>(cmp));
  }
  *names = list;
  return ok(static_cast<int>(n));
}

}  // namespace

namespace dispatch {

OBJCACHE_SERVE(opendir, const char* p) { return open_dir_at(AT_FDCWD, p); }
OBJCACHE_SERVE(fdopendir, int fd) { return dir_from_fd(fd); }
OBJCACHE_SERVE(readdir, DIR* d) { return read_dir<struct dirent>(d); }
OBJCACHE_SERVE(readdir64, DIR* d) { return read_dir<struct dirent64>(d); }
OBJCACHE_SERVE(readdir_r, DIR* d, struct dirent* e, struct dirent** r) { return read_dir_r(d, e, r); }
OBJCACHE_SERVE(readdir64_r, DIR* d, struct dirent64* e, struct dirent64** r) { return read_dir_r(d, e, r); }
OBJCACHE_SERVE(closedir, DIR* d) { return close_dir(d); }
OBJCACHE_SERVE(dirfd, DIR* dir) {
  ShimDir* d = find_dir(dir);
  return d != nullptr ? ok(d->fd) : fail<int>(EINVAL);
}
OBJCACHE_SERVE(rewinddir, DIR* dir) {
  if (ShimDir* d = find_dir(dir); d != nullptr) {
    std::lock_guard<std::mutex> g(d->mu);
    d->pos = 0;
    int err = 0;
    // A rewound stream sees the directory as it is now (within metadata_ttl).
    if (Vfs* v = lib::vfs(&err); v != nullptr) {
      if (auto l = lib::list(*v, d->node); l) d->entries = std::move(*l);
    }
  }
  return {0};
}
OBJCACHE_SERVE(seekdir, DIR* dir, long pos) {
  if (ShimDir* d = find_dir(dir); d != nullptr) {
    std::lock_guard<std::mutex> g(d->mu);
    d->pos = pos < 0 ? 0 : pos;
  }
  return {0};
}
OBJCACHE_SERVE(telldir, DIR* dir) {
  ShimDir* d = find_dir(dir);
  if (d == nullptr) return fail<long>(EBADF);
  std::lock_guard<std::mutex> g(d->mu);
  return ok(d->pos);
}
OBJCACHE_SERVE(scandir, const char* p, struct dirent*** n, Selector s, Compare c) {
  return scan_dir(AT_FDCWD, p, n, s, c);
}
OBJCACHE_SERVE(scandir64, const char* p, struct dirent64*** n, Selector64 s, Compare64 c) {
  return scan_dir(AT_FDCWD, p, n, s, c);
}
OBJCACHE_SERVE(scandirat, int fd, const char* p, struct dirent*** n, Selector s, Compare c) {
  return scan_dir(fd, p, n, s, c);
}
OBJCACHE_SERVE(scandirat64, int fd, const char* p, struct dirent64*** n, Selector64 s, Compare64 c) {
  return scan_dir(fd, p, n, s, c);
}

}  // namespace dispatch
}  // namespace objcache::preload
