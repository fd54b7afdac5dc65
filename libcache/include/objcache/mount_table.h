// SPDX-License-Identifier: Apache-2.0
// MountTable: which configured mount a local path falls in, and the S3 key
// it names. Purely lexical (mounts are virtual: no symlink, no system call),
// so the shim may ask on every path. A key never escapes its mount's prefix,
// and nothing here throws. Safe to call from many threads at once (const).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/export.h"

namespace objcache {

struct Resolved {
  int mount = -1;        // index into MountTable::mounts(); -1 = not ours
  std::string key;       // S3 key: mount prefix + relative path, no leading '/';
                         // for the mount root the prefix itself ("" or "a/b/")
  bool is_root = false;  // the path is the mount point itself

  bool ours() const { return mount >= 0; }
  bool operator==(const Resolved&) const = default;
};

class OBJCACHE_API MountTable {
 public:
  // Mount paths are normalized again here (config already does; this keeps
  // the table safe with hand-built configs): a mount whose path is not
  // absolute never matches, and a non-empty prefix gains a trailing '/'.
  // If memory runs out while building, the table is left empty, so every
  // path passes through.
  explicit MountTable(std::vector<MountConfig> mounts) noexcept;

  // path: absolute, or relative to cwd (cwd absolute). ".", ".." and "//" are
  // resolved lexically; ".." above a mount root leaves the mount, then the
  // usual rules apply to the result. Not ours: anything outside every mount,
  // an empty path, a path with a NUL, a path or result longer than the
  // kernel accepts (PATH_MAX including the NUL), a relative path without an
  // absolute cwd. The longest matching mount path wins.
  Resolved resolve(std::string_view path, std::string_view cwd = {}) const noexcept;

  // rel taken relative to the directory (mount, dir_key), for *at calls on a
  // dirfd of ours. An absolute rel behaves like resolve(rel). An empty rel
  // names nothing (AT_EMPTY_PATH is the caller's business: it already holds
  // the directory); a dir_key outside the mount's prefix is not ours.
  Resolved resolve_at(int mount, std::string_view dir_key, std::string_view rel) const noexcept;

  // The local path of (mount, key), the inverse of resolve (getcwd, realpath).
  // A key naming a directory may end in '/'. "" when mount is out of range or
  // key is not one resolve can produce for that mount (outside the prefix,
  // or with empty, "." or ".." components).
  std::string local_path(int mount, std::string_view key) const noexcept;

  const std::vector<MountConfig>& mounts() const { return mounts_; }

  // The shim's pre-check: false only when the absolute path is certainly in
  // no mount. Exact for paths without a ".." component; a path with one, or
  // a relative path, answers true (resolve decides). Never allocates.
  bool maybe_ours(std::string_view absolute_path) const noexcept;

  // The directories above mounts: for a path (as resolve takes it) that is
  // in no mount but is a strict ancestor of one or more mount paths, its
  // normalized form and the names of its children toward them ("/mnt" with
  // a mount at /mnt/data: {"/mnt", {"data"}}). The shim shows such a
  // directory when the disk has none there, for a path that reaches it
  // through "..", or relative to a directory (a mount root's ".." must be a
  // directory). Empty names: not above any mount.
  struct Above {
    std::string path;
    std::vector<std::string> names;  // sorted, unique
  };
  Above above(std::string_view path, std::string_view cwd = {}) const noexcept;

 private:
  struct Entry {
    std::string path;    // normalized mount path ("/" or "/a/b"); "" = never matches
    std::string prefix;  // "" or ends with '/'
  };

  // The mount whose path the components of path (absolute; empty ones and
  // "." skipped) begin with, the longest such, -1 if none. O(depth x log
  // mounts), and it never allocates.
  int find(std::string_view path) const noexcept;
  Resolved make(int mount, std::string_view normalized) const;

  std::vector<MountConfig> mounts_;
  std::vector<Entry> entries_;  // parallel to mounts_
  // Indices of the entries with a path other than "" and "/", sorted by
  // path (byte order), equal paths by index.
  std::vector<std::uint32_t> by_path_;
  int root_mount_ = -1;  // the first mount at "/": every absolute path is ours
};

}  // namespace objcache
