// SPDX-License-Identifier: Apache-2.0
// PageCache: the node-wide cache of object pages in shared memory, with an
// SSD spill tier behind it. Every process that opens the same cache.name
// shares its pages. A hit takes no lock and makes no system call; a miss is
// filled once node-wide, by the first process to ask, while the others wait.
// Thread-safe and fork-safe; nothing here throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/export.h"
#include "objcache/result.h"

namespace objcache {

namespace cache {
struct Access;
}

// The identity of one version of an object: xxh3-128 of bucket, key, ETag.
struct OBJCACHE_API ObjectId {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  static ObjectId of(std::string_view bucket, std::string_view key, std::string_view etag);
  bool operator==(const ObjectId&) const = default;
};

// One page of an object: [page * page_size, +length).
struct PageRef {
  ObjectId id;
  std::uint32_t page = 0;
  std::uint32_t length = 0;  // the page's full length (short for an object's last page)
  int mount = -1;            // index of the mount, for per-mount stats (-1: none)

  // mount value of a page holding metadata (listings, stat records): reads
  // of it count nothing (the hit ratio is about data); its filler reports
  // its requests with count_remote(bytes, kMetadata), in the totals only.
  static constexpr int kMetadata = -2;
};

enum class Tier { Ram, Spill, Remote };

struct PageRead {
  std::size_t bytes = 0;
  Tier tier = Tier::Ram;
  // Names the cached copy that was read (0: it was served uncached), for
  // evict_if: a later copy of the same page has another version.
  std::uint64_t version = 0;
};

// Fills dst (exactly the page's length) with the page's bytes, e.g. by a
// ranged GET. Called at most once per miss node-wide.
using PageFiller = std::function<Result<std::size_t>(std::span<std::byte> dst)>;


// Background fetching (readahead, prefetch, cachectl load) of one process.
struct FetchProgress {
  std::uint64_t queued_pages = 0;   // pages waiting in this process's queues
  std::uint64_t fetched_bytes = 0;  // by this process's background GETs
  std::uint64_t skipped_pages = 0;  // found cached (another process may have filled it meanwhile)
  std::uint64_t no_room_pages = 0;  // prefetch found no free room
  std::uint64_t failed_pages = 0;   // GET failed
  std::uint64_t retry_pages = 0;    // of those, waiting for the store to answer again (then queued)
  std::uint64_t in_flight = 0;      // this process's background GETs now
};

struct CacheCounters {
  std::uint64_t ram_hits = 0;
  std::uint64_t spill_hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t served_bytes = 0;
  std::uint64_t remote_bytes = 0;
  std::uint64_t remote_requests = 0;
  std::uint64_t prefetched_bytes = 0;
  std::uint64_t evictions = 0;
  std::uint64_t errors = 0;
  std::uint64_t uploaded_bytes = 0;   // written to the bucket (writable mounts, Writer)
  std::uint64_t upload_requests = 0;
  std::uint64_t uploads_failed = 0;   // their bytes stay staged (cachectl uploads)
  std::uint64_t list_requests = 0;    // LIST requests, also in remote_requests (totals only)
  std::uint64_t head_requests = 0;    // HEAD requests, also in remote_requests (totals only)
};

struct CacheStats {
  CacheCounters total;
  std::vector<CacheCounters> mounts;  // by mount index
  std::uint64_t ram_used_bytes = 0;
  std::uint64_t ram_capacity_bytes = 0;
  std::uint64_t spill_used_bytes = 0;
  std::uint64_t spill_capacity_bytes = 0;
  std::uint64_t index_entries = 0;
  std::uint64_t index_capacity = 0;
  std::uint64_t metadata_bytes = 0;  // index and bookkeeping inside the segment
  std::uint32_t processes = 0;       // processes attached now
  std::uint64_t working_set_bytes = 0;  // distinct data bytes read since the segment was made (estimate)
  std::uint32_t gets_in_flight = 0;     // GETs in flight node-wide now
  // The node's adaptive limit of background GETs as stored (0: not moved
  // yet, so kFetchStartConcurrency; each process also caps it at its own
  // prefetch_concurrency), why and when (unix seconds) it last changed.
  std::uint32_t fetch_limit = 0;
  std::string fetch_limit_reason;
  std::int64_t fetch_limit_changed = 0;
  std::string segment_path;
};

struct VerifyResult {
  std::uint64_t ram_items = 0;
  std::uint64_t ram_bad = 0;
  std::uint64_t spill_blocks = 0;
  std::uint64_t spill_bad = 0;
};

struct PageCacheOptions {
  std::string shm_dir;  // "" = /dev/shm
  // false: attach only; NotFound when no process has created the cache.
  bool create = true;
  // How long waiters let a live filler hold a page before taking it over.
  std::chrono::milliseconds fill_deadline{120000};
};

class OBJCACHE_API PageCache {
 public:
  static Result<std::unique_ptr<PageCache>> open(const CacheConfig& cfg, const PageCacheOptions& opts = {});
  ~PageCache();
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // Copies bytes [offset, offset + out.size()) of the page into out, from
  // RAM, else the spill tier, else by calling fill (once node-wide). Fewer
  // bytes only past the page's end.
  Result<PageRead> read(const PageRef& ref, std::uint32_t offset, std::span<std::byte> out,
                        const PageFiller& fill);
  // As read(), but never fills: NotFound on a miss, and no miss counted.
  Result<PageRead> lookup(const PageRef& ref, std::uint32_t offset, std::span<std::byte> out);
  bool contains(const ObjectId& id, std::uint32_t page);

  // Drops the page from RAM and spill.
  void evict(const ObjectId& id, std::uint32_t page);
  // Drops the page only if its cached copy is still the one read as
  // `version` (PageRead::version): of several processes that found the same
  // copy stale, one drops it and the others then read its successor.
  // True when this call dropped it.
  bool evict_if(const ObjectId& id, std::uint32_t page, std::uint64_t version);
  // A pinned page stays in RAM: its region is never reclaimed. No effect
  // on a page that is not cached.
  void pin(const ObjectId& id, std::uint32_t page);
  void unpin(const ObjectId& id, std::uint32_t page);

  // Counts a fetch made outside read()'s filler (prefetch, uncached reads).
  void count_remote(std::uint64_t bytes, int mount);
  // Counts a metadata request (in the totals only): a LIST or a HEAD.
  enum class MetaRequest { List, Head };
  void count_metadata(MetaRequest r);
  // Counts an upload: its bytes and requests, and whether it failed.
  void count_upload(std::uint64_t bytes, std::uint64_t requests, bool failed, int mount);
  // Puts a page into the cache that this process has the bytes of (an
  // object it just wrote): no request, nothing counted. False when it was
  // not admitted (no room, or cached already).
  bool admit(const PageRef& ref, std::span<const std::byte> data);

  CacheStats stats();
  // Checks the checksum of every cached page, RAM and spill; bad ones are dropped.
  VerifyResult verify();
  // Waits until pages queued for the spill tier are written.
  void flush_spill();

  std::uint64_t page_size() const;

 private:
  struct Impl;
  friend struct cache::Access;  // the fills of cache/page_fills.h
  explicit PageCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace objcache
