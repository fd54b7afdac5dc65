// SPDX-License-Identifier: Apache-2.0
// MetadataCache: stat records and directory listings of the mounts, kept as
// pages of the page cache under reserved ids, so that every process of a
// cache shares them and two processes missing the same listing make one
// LIST. A record lives for its mount's metadata_ttl from the moment it was
// made (0: for ever); the first process to use an expired one revalidates
// it, once node-wide. While the store cannot be reached, an expired record
// is still served (with a log line) and revalidation is tried again every
// kStaleRetry: a fully cached file stays readable through an outage.
// forget() drops what is known of a key node-wide at once (after a write).
// Thread-safe. Knows nothing of the shim or of prefetching.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <array>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <string_view>

#include "meta/manifest.h"
#include "meta/meta_codec.h"
#include "objcache/config.h"
#include "objcache/metadata.h"
#include "objcache/page_cache.h"
#include "store/store_set.h"

namespace objcache::meta {

enum class Fill { No, Yes };

// Wall-clock milliseconds since the epoch (tests pass their own).
using WallClock = std::function<std::int64_t()>;
std::int64_t system_now_ms();

class MetadataCache {
 public:
  // How soon a record that could not be revalidated is tried again.
  static constexpr std::chrono::milliseconds kStaleRetry{10000};

  MetadataCache(const Config& cfg, PageCache& cache, store::StoreSet& stores, WallClock clock = {});
  MetadataCache(const MetadataCache&) = delete;
  MetadataCache& operator=(const MetadataCache&) = delete;

  // The node of key under mount m (a key, not a prefix: no trailing '/').
  // Answered from the parent's cached listing when there is one (positive
  // or negative, no request), else from a stat record (HEAD, and for a
  // missing key a one-key LIST of key + '/' to tell a directory apart).
  // NotFound when neither object nor prefix exists.
  Result<Node> stat(int m, const std::string& key);
  // The directory node of prefix ("" or ending in '/').
  Node dir_node(int m, std::string prefix) const;
  // The entries of the directory prefix, filling the listing (one LIST
  // node-wide) when fill is Yes; NotFound when it is not cached (or has
  // expired) and fill is No.
  Result<std::shared_ptr<const Listing>> listing(int m, const std::string& prefix, Fill fill);
  // Drops node-wide what is known of key (a file key, or a prefix ending
  // in '/'): its stat record, its own listing, its parent's listing.
  void forget(int m, const std::string& key);
  // What this node just wrote: the stat record of key says so at once
  // (after forget), so a reader on this node makes no HEAD for it.
  void remember_file(int m, const std::string& key, std::uint64_t size, std::int64_t mtime, const std::string& etag);

  // The id of a node-wide record of this cache for (m, kind, key); the
  // kinds 'R' (listing record), 'L' (listing blob), 'S' (stat record) are
  // this class's, others (the prefetcher's 'P') are the caller's.
  ObjectId record_id(int m, char kind, std::string_view key, std::string_view version = {}) const;
  // Whether something made at made_ms is still within m's metadata_ttl.
  bool fresh(int m, std::int64_t made_ms) const;
  std::int64_t now_ms() const { return clock_(); }

  void lock_for_fork() {
    manifest_mu_.lock();
    for (auto& s : memo_) s.mu.lock();
  }
  void unlock_after_fork() {
    for (auto& s : memo_) s.mu.unlock();
    manifest_mu_.unlock();
  }

 private:
  struct MemoEntry {
    std::uint64_t nonce = 0;
    std::shared_ptr<const Listing> listing;
  };

  const MountConfig& mount(int m) const { return cfg_.mounts[static_cast<std::size_t>(m)]; }
  Result<Listing> fetch_listing(int m, const std::string& prefix);
  // m's manifest, read on first use by this process (only a process that
  // fills a listing needs it); its error, with file and line, if bad.
  Result<std::shared_ptr<const Manifest>> manifest(int m);
  // Writes a fresh listing's blob pages and its record into dst.
  std::shared_ptr<const Listing> publish_listing(int m, const std::string& prefix, Listing l,
                                                 std::span<std::byte> dst);
  Result<Listing> read_blob(int m, const std::string& prefix, const ListingRecord& rec);
  Result<StatRecord> query(int m, const std::string& key);
  Result<StatRecord> head_record(int m, const std::string& key);
  // made_ms for a record kept because revalidation failed: it expires again
  // after kStaleRetry (or the TTL, if shorter).
  std::int64_t stale_made_ms(int m) const;
  void note_stale(int m, const std::string& what, const Error& why, std::int64_t made_ms);

  std::shared_ptr<const Listing> memo_get(const std::string& k, std::uint64_t nonce);
  void memo_put(const std::string& k, std::uint64_t nonce, std::shared_ptr<const Listing> l);
  void memo_erase(const std::string& k);

  const Config& cfg_;
  PageCache& cache_;
  store::StoreSet& stores_;
  WallClock clock_;

  // This process's decoded listings by (mount, prefix), each valid while
  // the shared record still names its nonce. Sharded (64 short-held
  // mutexes, no global lock): lookups of different directories never meet.
  // Plain mutexes: a forked child unlocks what its parent's fork handler
  // took, which a pthread rwlock (it records its writer's tid) refuses.
  struct MemoShard {
    std::mutex mu;
    std::unordered_map<std::string, MemoEntry> map;
    std::size_t entries = 0;  // directory entries held
  };
  static constexpr std::size_t kMemoShards = 64;
  static constexpr std::size_t kMemoMaxEntries = 200000;  // over all shards
  MemoShard& shard(const std::string& k) { return memo_[std::hash<std::string>{}(k) % kMemoShards]; }
  std::array<MemoShard, kMemoShards> memo_;

  std::mutex manifest_mu_;
  std::unordered_map<int, Result<std::shared_ptr<const Manifest>>> manifests_;
};

}  // namespace objcache::meta
