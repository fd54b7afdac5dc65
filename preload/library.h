// SPDX-License-Identifier: Apache-2.0
// The engine's view of the library: the configuration (read once, when the
// engine is loaded), the mount table, the Vfs (attached on first use), and
// where a path or a *at() pair points. Everything here runs under the
// re-entry guard and never throws.
#pragma once

#include <string>

#include "objcache/mount_table.h"
#include "objcache/vfs.h"

namespace objcache::preload::lib {

// Reads the configuration (OBJCACHE_CONFIG, else the default paths), once,
// from the engine's init. With a usable one that has mounts, turns
// dispatch::mounts_active() on and returns true. A bad one is reported once
// on stderr (file, line, key) and everything passes through (false).
bool load() noexcept;

// The mount table (empty until load() found mounts).
const MountTable& mounts() noexcept;

// The Vfs, attached on first call. nullptr if the cache cannot be opened
// (said once on stderr); *error then holds the errno to report.
Vfs* vfs(int* error) noexcept;

// Where a path leads. After a chdir into a mount, a relative path that
// leaves every mount ("../..") is not ours and goes to the kernel, whose
// current directory is then an empty directory: it fails with ENOENT.
struct Target {
  Resolved where;
  bool bad_dirfd = false;  // a relative path against an fd we do not know as a directory
  // In no mount, but a directory above mounts that the disk does not have
  // ("/mnt" for a mount at /mnt/data on a machine without /mnt): shown as a
  // directory whose entries lead toward the mounts.
  MountTable::Above above;
  bool is_above() const { return !above.names.empty(); }
};

// The entries of a directory node: the Vfs's listing, or for a directory
// above mounts (mount < 0, key = its path) the names leading to them.
Result<std::shared_ptr<const Listing>> list(Vfs& v, const Node& dir) noexcept;

// A path, absolute or relative to the current directory.
Target resolve(const char* path) noexcept;
// A path relative to dirfd (AT_FDCWD: the current directory).
Target resolve_at(int dirfd, const char* path) noexcept;

// The current directory as the shim sees it: a directory under a mount
// after chdir/fchdir into one, else "" (the kernel's own).
std::string virtual_cwd() noexcept;
bool has_virtual_cwd() noexcept;
void set_virtual_cwd(std::string path) noexcept;  // "" clears it

// For exec: envp with OBJCACHE_VCWD=<virtual cwd> set (a new array, or envp
// itself when there is nothing to add), so the new program image starts in
// the same directory; load() picks it up when the kernel's cwd is still the
// empty placeholder directory. `staged`: the files being written that the
// new image takes over (handover.h), set as OBJCACHE_STAGED (and any old
// value dropped) when not empty.
char* const* env_for_exec(char* const* envp, const std::string& staged) noexcept;

// A real fd to stand in for a virtual one (O_PATH, so a raw read, mmap or
// getdents on it fails with EBADF rather than returning wrong bytes): on
// /dev/null for files, on an empty private directory for directories.
int placeholder_fd(bool directory, bool cloexec) noexcept;

// The O_PATH directory a virtual cwd leaves the kernel in.
int empty_dir_fd() noexcept;

}  // namespace objcache::preload::lib
