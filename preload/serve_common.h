// SPDX-License-Identifier: Apache-2.0
// Shared by serve_*.cpp: outcomes, errno from library errors, looking a
// path up in the Vfs, and the stat a node shows.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <mutex>

#include "dispatch.h"
#include "handlers.h"
#include "library.h"
#include "objcache/vfs.h"
#include "vfile.h"

// glibc's fortify failure (exported; declared only under _FORTIFY_SOURCE).
extern "C" [[noreturn]] void __chk_fail(void);

namespace objcache::preload::serve {

template <typename R>
dispatch::Outcome<R> fail(int e) noexcept {
  if constexpr (std::is_pointer_v<R>) {
    return {nullptr, e};
  } else {
    return {static_cast<R>(-1), e};
  }
}

template <typename R>
dispatch::Outcome<R> ok(R value) noexcept {
  return {value, 0};
}

// The errno for a library error; never 0.
int errno_of(Status s) noexcept;

// The kernel's checks on a path as written: a component over NAME_MAX; a
// path that can only name a directory (a trailing '/', "/." or ".").
bool name_too_long(const char* path) noexcept;
bool names_directory(const char* path) noexcept;

struct Lookup {
  int error = 0;  // errno; 0 = found
  Node node;
  // The path names a file this process is writing (node: as it is now).
  std::shared_ptr<Staged> staged;
};

// Whether mount m (an index of the mount table) takes writes.
bool writable(int m) noexcept;

// raw_path: the path as the program wrote it, for the kernel's checks on it
// (ENAMETOOLONG, a trailing '/' on a file); nullptr when there is none.
Lookup lookup(const lib::Target& t, const char* raw_path) noexcept;
Lookup lookup_path(const char* path) noexcept;
// *at(): an empty path with AT_EMPTY_PATH is dirfd itself.
Lookup lookup_at(int dirfd, const char* path, int flags) noexcept;
Lookup lookup_fd(int fd) noexcept;

// struct stat and struct stat64 are one layout on the 64-bit targets we
// build for; fill_stat writes either.
void fill_stat(const Node& n, struct stat64* st) noexcept;
void fill_stat(const Node& n, struct stat* st) noexcept;

// A staged file as stat shows it: the staged bytes' size and times (of fd,
// one of its fds, or else of its path), the object's st_dev and st_ino.
// false if the staged file cannot be stat'ed.
bool staged_node(const Staged& s, int fd, Node* out) noexcept;
// fstat of an fd on a staged file: the kernel's answer with our identity.
int stat_staged_fd(int fd, const Staged& s, struct stat64* st) noexcept;

// The lock that orders a staged fd's writes with finding their offset (see
// OpenFile::mu); not locked for other files.
std::unique_lock<std::mutex> offset_lock(OpenFile& f) noexcept;

// open(2) on a writable mount for writing (serve_write.cpp): a staged file.
dispatch::Outcome<int> open_for_write(const lib::Target& t, const char* raw_path, int flags) noexcept;
// Another fd on a file this process is writing (a second open of its path).
dispatch::Outcome<int> open_staged(const std::shared_ptr<Staged>& s, int flags) noexcept;

// close(2) of an fd of ours (serve_fd.cpp): the kernel fd is closed
// whatever the commit of a staged file says; the commit's error is close's.
dispatch::Outcome<int> close_fd(int fd) noexcept;
// Materialises fd if it is a virtual file (its bytes into a memfd); 0 or an
// errno.
int make_real(int fd) noexcept;
// open(2) under a mount, every spelling (serve_path.cpp).
dispatch::Outcome<int> open_at(int dirfd, const char* path, int flags) noexcept;

// The commit of a staged file whose last fd the caller just closed (null:
// none); 0 or the errno to report.
int commit_closed(const vfile::Detached& d) noexcept;

}  // namespace objcache::preload::serve
