// SPDX-License-Identifier: Apache-2.0
// The lexical path rules behind MountTable (objcache/mount_table.h): walking
// components, normalizing, comparing at component boundaries. Pure string
// work: no system call, no symlink lookup, and only append_lexical allocates.
#pragma once

#include <climits>
#include <cstddef>
#include <string>
#include <string_view>

#include "objcache/mount_table.h"

namespace objcache::mounts {

// Longest path in bytes the kernel accepts; its PATH_MAX counts the NUL.
inline constexpr std::size_t kMaxPathLength = PATH_MAX - 1;

// The components of a path in order, without empty ones and ".".
class Components {
 public:
  explicit Components(std::string_view path) noexcept : rest_(path) {}
  // Sets out to the next component; false at the end.
  bool next(std::string_view& out) noexcept;

 private:
  std::string_view rest_;
};

// Applies path's components to out, a normalized absolute path ("/" or
// "/a/b"): "." and empty ones are dropped, ".." removes the last component
// and stays at "/" above the root. A leading '/' in path is the caller's
// business (reset out to "/" first).
void append_lexical(std::string& out, std::string_view path);

// Whether path has a ".." component.
bool has_dotdot(std::string_view path) noexcept;

// How path, after its first `matched` bytes, compares with "/" + component
// over the length of the latter, in byte order (unsigned): < 0, 0 when path
// goes on with "/component" (maybe more after it), > 0. matched is at most
// path.size().
int compare_component(std::string_view path, std::size_t matched, std::string_view component) noexcept;

// Whether rel ("" or "a/b") has only non-empty components other than "."
// and "..", and no NUL: a relative path that is already normalized.
bool is_clean_relative(std::string_view rel) noexcept;

}  // namespace objcache::mounts
