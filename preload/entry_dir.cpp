// SPDX-License-Identifier: Apache-2.0
// Entry points: directory streams. glibc's scandir and readdir do their I/O
// through internal aliases, so each DIR-level call is hooked, not getdents.
#include "entry.h"

using namespace objcache::preload;

using Selector = int (*)(const struct dirent*);
using Compare = int (*)(const struct dirent**, const struct dirent**);
using Selector64 = int (*)(const struct dirent64*);
using Compare64 = int (*)(const struct dirent64**, const struct dirent64**);

OBJCACHE_ENTRY DIR* opendir(const char* path) {
  if (pass_path(path)) return real::fn<Sym::opendir>()(path);
  return dispatch::serve<Sym::opendir>(path);
}

OBJCACHE_ENTRY DIR* fdopendir(int fd) {
  if (pass_fd(fd)) return real::fn<Sym::fdopendir>()(fd);
  return dispatch::serve<Sym::fdopendir>(fd);
}

OBJCACHE_ENTRY struct dirent* readdir(DIR* dir) {
  if (pass_dir(dir)) return real::fn<Sym::readdir>()(dir);
  return dispatch::serve<Sym::readdir>(dir);
}

OBJCACHE_ENTRY struct dirent64* readdir64(DIR* dir) {
  if (pass_dir(dir)) return real::fn<Sym::readdir64>()(dir);
  return dispatch::serve<Sym::readdir64>(dir);
}

OBJCACHE_ENTRY int readdir_r(DIR* dir, struct dirent* entry, struct dirent** result) {
  if (pass_dir(dir)) return real::fn<Sym::readdir_r>()(dir, entry, result);
  return dispatch::serve<Sym::readdir_r>(dir, entry, result);
}

OBJCACHE_ENTRY int readdir64_r(DIR* dir, struct dirent64* entry, struct dirent64** result) {
  if (pass_dir(dir)) return real::fn<Sym::readdir64_r>()(dir, entry, result);
  return dispatch::serve<Sym::readdir64_r>(dir, entry, result);
}

OBJCACHE_ENTRY int closedir(DIR* dir) {
  if (pass_dir(dir)) return real::fn<Sym::closedir>()(dir);
  return dispatch::serve<Sym::closedir>(dir);
}

OBJCACHE_ENTRY int dirfd(DIR* dir) noexcept {
  if (pass_dir(dir)) return real::fn<Sym::dirfd>()(dir);
  return dispatch::serve<Sym::dirfd>(dir);
}

OBJCACHE_ENTRY void rewinddir(DIR* dir) noexcept {
  if (pass_dir(dir)) return real::fn<Sym::rewinddir>()(dir);
  return dispatch::serve<Sym::rewinddir>(dir);
}

OBJCACHE_ENTRY void seekdir(DIR* dir, long pos) noexcept {
  if (pass_dir(dir)) return real::fn<Sym::seekdir>()(dir, pos);
  return dispatch::serve<Sym::seekdir>(dir, pos);
}

OBJCACHE_ENTRY long telldir(DIR* dir) noexcept {
  if (pass_dir(dir)) return real::fn<Sym::telldir>()(dir);
  return dispatch::serve<Sym::telldir>(dir);
}

OBJCACHE_ENTRY int scandir(const char* path, struct dirent*** names, Selector select, Compare cmp) {
  if (pass_path(path)) return real::fn<Sym::scandir>()(path, names, select, cmp);
  return dispatch::serve<Sym::scandir>(path, names, select, cmp);
}

OBJCACHE_ENTRY int scandir64(const char* path, struct dirent64*** names, Selector64 select,
                             Compare64 cmp) {
  if (pass_path(path)) return real::fn<Sym::scandir64>()(path, names, select, cmp);
  return dispatch::serve<Sym::scandir64>(path, names, select, cmp);
}

OBJCACHE_ENTRY int scandirat(int dirfd, const char* path, struct dirent*** names, Selector select,
                             Compare cmp) {
  if (pass_at(dirfd, path)) return real::fn<Sym::scandirat>()(dirfd, path, names, select, cmp);
  return dispatch::serve<Sym::scandirat>(dirfd, path, names, select, cmp);
}

OBJCACHE_ENTRY int scandirat64(int dirfd, const char* path, struct dirent64*** names,
                               Selector64 select, Compare64 cmp) {
  if (pass_at(dirfd, path)) return real::fn<Sym::scandirat64>()(dirfd, path, names, select, cmp);
  return dispatch::serve<Sym::scandirat64>(dirfd, path, names, select, cmp);
}
