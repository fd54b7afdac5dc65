// SPDX-License-Identifier: Apache-2.0
// What objcache knows of the files and directories under a mount, without
// reading them: a node (what stat says) and a directory's entries. Plain
// values; the metadata cache (meta/) makes them, the Vfs hands them out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace objcache {

enum class NodeKind : std::uint8_t { File, Directory };

// What stat says of a file or directory under a mount.
struct Node {
  NodeKind kind = NodeKind::File;
  int mount = -1;
  std::string key;          // object key; for a directory its prefix ("" or ends with '/')
  std::uint64_t size = 0;   // bytes (0 for a directory)
  std::int64_t mtime = 0;   // seconds since the epoch (Last-Modified; 0 for a directory)
  std::string etag;         // the version reads are pinned to (files)
  std::uint64_t ino = 0;    // stable per (mount, key), never 0
  std::uint64_t dev = 0;    // constant per mount

  bool is_dir() const { return kind == NodeKind::Directory; }
};

// One name in a directory.
struct DirEntry {
  std::string name;
  NodeKind kind = NodeKind::File;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::string etag;
  std::uint64_t ino = 0;
};

// A directory's entries, sorted by name (bytewise). Immutable once made.
using Listing = std::vector<DirEntry>;

}  // namespace objcache
