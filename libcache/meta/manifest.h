// SPDX-License-Identifier: Apache-2.0
// A manifest: the objects of a mount named in a local file, so a job over a
// fixed data set lists nothing and stats nothing. One object per line,
// either a JSON object ({"key": "...", "size": N, "etag": "...", "mtime":
// SECONDS}; mtime optional) or a CSV row (key,size,etag[,mtime]; a first
// row "key,size,etag..." is a header). Keys are the bucket's keys, under
// the mount's prefix. Pure parsing and lookups: what a mount does with it
// is MetadataCache's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/object_store.h"
#include "objcache/result.h"

namespace objcache::meta {

class Manifest {
 public:
  struct Row {
    std::string name;  // the key without the mount's prefix
    std::uint64_t size = 0;
    std::int64_t mtime = 0;
    std::string etag;
  };

  // Reads path. An error names the file and line and says what is wrong
  // (Status::ConfigError); an unreadable file is its errno's status.
  // Keys outside prefix are errors; so is a key given twice.
  static Result<Manifest> load(const std::string& path, const std::string& prefix);
  static Result<Manifest> parse(std::string_view text, const std::string& display_path, const std::string& prefix,
                                std::int64_t default_mtime);

  // The objects and common prefixes directly under dir (a prefix of the
  // mount, "" or ending in '/'), as a delimited LIST would give them:
  // full keys, the mount's prefix included.
  void list(std::string_view dir, std::vector<ObjectInfo>* objects, std::vector<std::string>* prefixes) const;

  std::size_t size() const { return rows_.size(); }
  const std::vector<Row>& rows() const { return rows_; }

 private:
  std::string prefix_;
  std::vector<Row> rows_;  // by name
};

// One manifest line for an object (JSON), with its newline.
std::string manifest_line(const ObjectInfo& o);

}  // namespace objcache::meta
