// SPDX-License-Identifier: Apache-2.0
// The string checks behind the config loader that need no TOML: names,
// paths, endpoints, regions, credential specs and the directories no mount
// may hide. Each check returns the value in its normal form, or an Error
// whose message reads "expected ..., got ..." so that config.cpp only has
// to put "FILE:LINE: key 'K': " in front. No I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/result.h"

namespace objcache::config {

// Paths in byte order, except that '/' sorts before every other byte: then
// the paths inside "/a" ("/a/b", "/a/c/d") follow it at once, before "/a-b"
// or "/a.x" can come between.
struct PathLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept;
};

// A directory no mount may be at or above, and what it is, for messages.
struct NeededDir {
  std::string path;  // normalized and absolute, never "/"
  std::string what;  // "the system directory /etc", "cache.spill_dir \"/ssd\""
};

// The directories programs under the shim cannot do without (/etc, /usr,
// /bin, /sbin, /lib*, /proc, /sys, /dev, /dev/shm, /run, /tmp, /var/tmp),
// then cfg's own: cache.spill_dir, the staging directory, and the
// directories of the configuration file, of log.file and of every "file:"
// credentials file.
std::vector<NeededDir> needed_dirs(const Config& cfg);

// text in double quotes, with quotes, backslashes and control characters
// escaped and anything past 80 bytes cut to "...": safe for one log line.
std::string quote(std::string_view text);

// The Error "EXPECTED WHY, got "GOT"" (InvalidArgument).
Error invalid(std::string_view expected, std::string_view why, std::string_view got);

// ASCII lower case.
std::string lower(std::string_view s);

// $HOME without a trailing '/', if it is set and absolute (secure_getenv).
std::optional<std::string> home_dir();

// cache.name: it becomes part of a /dev/shm file name.
Result<std::string> check_cache_name(const std::string& text);

// mount.path: absolute; "//" collapsed and a trailing '/' dropped;
// "." and ".." segments and "/" itself refused.
Result<std::string> normalize_mount_path(const std::string& text);

// "" or an absolute path. With Tilde::Expand, "~/x" becomes $HOME/x.
enum class Tilde { Keep, Expand };
Result<std::string> check_local_path(const std::string& text, Tilde tilde);

// "" or http(s)://host[:port]; returned with the scheme in lower case and
// any trailing '/' dropped, the form the store client expects.
Result<std::string> check_endpoint(const std::string& text);

// "" or a region name that is safe inside a SigV4 credential scope.
Result<std::string> check_region(const std::string& text);

// "env" | "anonymous" | "profile:NAME" | "file:PATH"; a "file:~/x" comes
// back as "file:$HOME/x".
Result<std::string> check_credentials(const std::string& text);

}  // namespace objcache::config
