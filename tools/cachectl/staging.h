// SPDX-License-Identifier: Apache-2.0
// What cachectl learns about the staging directory and its writers without
// the library: where the directory is, how many bytes wait there, and
// whether a staged file's writer is still at it. Reads only; never changes
// a staged file (Vfs::retry_upload and discard_upload do).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "objcache/config.h"
#include "objcache/vfs.h"

namespace objcache::cachectl {

// The staging directory cfg implies (the library's staging_directory).
std::string staging_dir_of(const CacheConfig& cfg);

struct StagedTotal {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};
// The staged files in dir (a data file with its sidecar) and their bytes;
// zeros when dir does not exist.
StagedTotal staged_total(const std::string& dir);

// Whether a staged file's writer is still at it.
enum class Writer {
  Gone,       // no such process (or the pid now names a younger process)
  Done,       // alive, but its upload failed and it no longer holds the file
  Writing,    // alive and writing it (or holds it open after a failed fsync)
  Uploading,  // alive and uploading it now
};
Writer writer_of(const Vfs::StagedUpload& u);
// A writer that is Writing or Uploading owns the file: never retried or
// discarded from outside.
inline bool busy(Writer w) { return w == Writer::Writing || w == Writer::Uploading; }

}  // namespace objcache::cachectl
