// SPDX-License-Identifier: Apache-2.0
// StagingDir: where written bytes wait on local disk until their object is
// complete in the bucket (cache.staging_dir). Each staged file is a data
// file (0600) and a JSON sidecar naming its bucket, key, the path the
// program wrote, its writer and its last error, so that a person (or
// `cachectl uploads`) can find, retry or discard it after a failure or a
// crash. A directory that another user owns or can write is refused.
// Knows nothing of S3 requests or of the shim.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "objcache/result.h"

namespace objcache::upload {

// What the sidecar of a staged file says.
struct StagedInfo {
  std::string data_path;  // the staged bytes
  std::string meta_path;  // the sidecar
  std::string bucket;
  std::string key;
  std::string local_path;  // as the program named it (mount path + key)
  std::int64_t created = 0;  // seconds since the epoch
  pid_t writer = 0;          // the process that writes it
  std::string state;         // "writing", "uploading", "failed", "incomplete" (a write failed)
  std::string error;         // the last failure, for a person
  std::string upload_id;     // a multipart upload left open, or ""
  bool closed = false;       // its writer closed it (a failed close: anyone may retry it)
  std::uint64_t size = 0;    // bytes of the data file now (listing only)
};

class StagingDir {
 public:
  // Creates dir (0700) if missing; refuses one that is not a directory
  // owned by this user, or that group or others can write.
  static Result<StagingDir> open(const std::string& dir);

  const std::string& path() const { return dir_; }

  // A new staged file (0600, empty) and its sidecar; the returned info has
  // data_path and meta_path set and is already written.
  Result<StagedInfo> create(const std::string& bucket, const std::string& key, const std::string& local_path) const;
  // Rewrites the sidecar (state, error, upload id, key after a rename).
  Result<void> update(const StagedInfo& info) const;
  // Removes the data file and the sidecar (the object is in the bucket).
  void remove(const StagedInfo& info) const;
  // Every staged file with a readable sidecar, oldest first.
  std::vector<StagedInfo> list() const;
  // The staged file whose bytes are data_path (a file of this directory);
  // NotFound if it has no readable sidecar.
  Result<StagedInfo> read(const std::string& data_path) const;

 private:
  explicit StagingDir(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// The staging directory a configuration implies: cache.staging_dir, else
// <spill_dir>/staging, else /var/tmp/objcache/staging.
std::string default_staging_dir(const std::string& staging_dir, const std::string& spill_dir);

}  // namespace objcache::upload
