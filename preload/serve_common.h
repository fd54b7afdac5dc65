// SPDX-License-Identifier: Apache-2.0
// Shared by serve_*.cpp: outcomes, errno from library errors, looking a
// path up in the Vfs, and the stat a node shows.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>

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

struct Lookup {
  int error = 0;  // errno; 0 = found
  Node node;
};

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

}  // namespace objcache::preload::serve
