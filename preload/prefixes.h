// SPDX-License-Identifier: Apache-2.0
// The shim's own view of the configuration: where it is (exactly as
// libcache's find_config_path finds it) and the paths of its [[mount]]s,
// read by a conservative scanner instead of toml11, so a process starts
// without the engine. The scanner understands a plain subset of TOML
// (comments, [cache]/[store]/[log] and [[mount]] headers, one-line
// `key = value` pairs with simple strings and bare values); anything else
// makes it answer kUnsure, and the shim then loads the engine at once so the
// full parser reports the file as it always has. Also the shim's copy of the
// current directory, for relative paths before the engine is loaded. Must
// not: allocate from the heap, call a name the shim exports, or link
// anything but libc.
#pragma once

namespace objcache::preload::prefixes {

enum class Scan {
  kNoMounts,  // no configuration file, or one without [[mount]]
  kMounts,    // mounts read; the engine loads when a path falls in one
  kUnsure,    // load the engine now: it decides (and reports)
};

// Finds and scans the configuration; once, from the shim's constructor.
Scan load() noexcept;

// How a path stands to the mounts, judged lexically ("//" and "." dropped;
// ".." and relative paths resolved against the shim's current directory).
enum class Match {
  kNone,   // certainly in no mount, and no directory above one the engine would show
  kMaybe,  // in a mount, or the engine must say (above a mount, too long...)
};
Match match(const char* path) noexcept;

// After a chdir or fchdir that the engine did not see: re-reads the
// current directory.
void refresh_cwd() noexcept;

// Whether the kernel's current directory is the placeholder a virtual one
// leaves it in (an exec from inside a mount: the engine must load to
// restore it).
bool cwd_is_placeholder() noexcept;

}  // namespace objcache::preload::prefixes
