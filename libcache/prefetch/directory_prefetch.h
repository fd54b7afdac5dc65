// SPDX-License-Identifier: Apache-2.0
// DirectoryPrefetch: the decisions of `prefetch = "directory"` and "file".
//   - Listing a directory, or opening a file in it, queues its other files
//     for background fetching, once per process per metadata_ttl.
//   - One process prefetches a directory node-wide: a record in the cache
//     ('P', with its pid) names the owner; another process takes over only
//     when the owner has exited or the record expired. A DataLoader's
//     workers leave it to the parent that listed it first.
//   - A walk (os.walk, ImageFolder's scan) lists the subdirectories next:
//     list-ahead lists them now, in parallel on the fetcher's task threads,
//     and queues their files as each listing arrives.
//   - "file": opening a large file queues the rest of it.
// It decides; the fetcher runs the GETs. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "fetch/fetcher.h"
#include "meta/metadata_cache.h"
#include "objcache/config.h"
#include "objcache/metadata.h"

namespace objcache::prefetch {

class DirectoryPrefetch {
 public:
  DirectoryPrefetch(const Config& cfg, PageCache& cache, meta::MetadataCache& meta, fetch::Fetcher& fetcher);

  // A directory of mount m was listed (by the program).
  void listed(int m, const std::string& prefix, const Listing& entries);
  // A file was opened.
  void opened(const Node& file);

  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

 private:
  // What this process knows of a directory's prefetch.
  struct DirState {
    std::int64_t queued_ms = 0;   // when this process queued it (0: not)
    std::int64_t recheck_ms = 0;  // another process owns it: look again then
  };
  static constexpr std::size_t kMaxDirs = 100000;
  static constexpr std::int64_t kRecheckOwnerMs = 1000;

  const MountConfig& mount(int m) const { return cfg_.mounts[static_cast<std::size_t>(m)]; }
  // Queues the files of a listed directory, if this process owns it.
  void prefetch_listing(int m, const std::string& prefix, const Listing& entries);
  void list_ahead(int m, const std::string& prefix, const Listing& entries);
  bool own(int m, const std::string& prefix);

  const Config& cfg_;
  PageCache& cache_;
  meta::MetadataCache& meta_;
  fetch::Fetcher& fetcher_;

  std::mutex mu_;
  std::map<std::string, DirState> dirs_;       // by (mount, prefix)
  std::map<std::string, std::int64_t> ahead_;  // listed ahead at (ms), by (mount, prefix)
};

}  // namespace objcache::prefetch
