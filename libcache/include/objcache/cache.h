// SPDX-License-Identifier: Apache-2.0
// Cache: objcache linked into a program. Opens objects by URI
// ("s3://bucket/key", "oss://bucket/key") or by a path under a configured
// mount, reads them from the node's shared page cache (the same pages the
// shim and cachectl use), lists prefixes page by page, prefetches keys in
// the order the program will read them, and writes objects through the
// upload path of writable mounts. Built on Vfs; it never reads around it.
// Every call returns a Result; nothing throws. Thread-safe; a forked child
// may go on using what its parent opened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/export.h"
#include "objcache/page_cache.h"
#include "objcache/result.h"

namespace objcache {

namespace api {
struct Shared;  // the state Cache, File, Writer and Lister share (api/shared.h)
}

// What stat says of an object or a prefix.
struct FileInfo {
  std::string bucket;
  std::string key;          // for a prefix: ends with '/' (or "" for the bucket root)
  std::uint64_t size = 0;   // bytes; 0 for a prefix
  std::int64_t mtime = 0;   // seconds since the epoch (Last-Modified)
  std::string etag;         // without quotes; "" for a prefix
  bool is_dir = false;      // a prefix of other keys, not an object
};

enum class Whence { Set, Current, End };

// An object opened for reading, pinned to the version (ETag) seen at open:
// every byte comes from that version, or the read fails
// (PreconditionFailed) when the object changed under it.
class OBJCACHE_API File {
 public:
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  std::uint64_t size() const;
  const std::string& etag() const;
  const std::string& key() const;
  const std::string& bucket() const;
  // Copies bytes [offset, offset + out.size()) into out, straight from
  // shared memory; fewer only at the end of the object (0 at or past it).
  // Waits for the GET on a miss. Safe from many threads at once.
  Result<std::size_t> pread(std::uint64_t offset, std::span<std::byte> out) const;
  // As pread at the position, which then moves on. Not for two threads at once.
  Result<std::size_t> read(std::span<std::byte> out);
  // Moves the position (past the end is allowed; reads there return 0);
  // returns the new one. InvalidArgument for a negative result.
  Result<std::uint64_t> seek(std::int64_t offset, Whence whence = Whence::Set);
  std::uint64_t tell() const;

 private:
  friend class Cache;
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An object being written: bytes are staged on local disk (cache.staging_dir)
// and streamed to the bucket in parts while they come; commit() returns when
// the object is complete in the bucket. Until then readers see the old
// version (or none). A failed commit keeps the staged bytes (cachectl
// uploads lists them) and may be called again. Not for two threads at once.
class OBJCACHE_API Writer {
 public:
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer();  // without commit: as abort()

  // Appends data. An error leaves the writer failed: commit reports it.
  Result<void> write(std::span<const std::byte> data);
  Result<void> write(std::string_view data);
  // Bytes written so far.
  std::uint64_t size() const;
  // Uploads what is left and completes the object; it exists when this returns.
  Result<void> commit();
  // Drops the staged bytes and any parts sent; the object stays as it was.
  void abort();

 private:
  friend class Cache;
  struct Impl;
  explicit Writer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One key of a listing.
struct ListEntry {
  std::string name;  // as the listing was asked: "s3://bucket/key", or the local path
  std::string key;
  std::uint64_t size = 0;  // bytes
  std::int64_t mtime = 0;  // seconds since the epoch
  std::string etag;
};

// Every key under a prefix (recursively, in key order), a page of up to
// 1000 at a time: one ListObjectsV2 request per next(), so prefixes of
// millions of keys cost memory for one page only.
class OBJCACHE_API Lister {
 public:
  Lister(Lister&&) noexcept;
  Lister& operator=(Lister&&) noexcept;
  ~Lister();

  // The next page; empty when the listing is done.
  Result<std::vector<ListEntry>> next();
  bool done() const;

 private:
  friend class Cache;
  struct Impl;
  explicit Lister(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class OBJCACHE_API Cache {
 public:
  // Attaches (or creates) the cache cfg.cache names. cfg needs no [[mount]]:
  // a [store] and a [cache] are enough for URIs; mounts add local paths.
  static Result<std::unique_ptr<Cache>> open(const Config& cfg, const PageCacheOptions& opts = {});
  // As open(load_config(toml_path)).
  static Result<std::unique_ptr<Cache>> open_file(const std::string& toml_path,
                                                  const PageCacheOptions& opts = {});
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // where: "s3://bucket/key" ("oss://" alike), or a path under a mount
  // (absolute, or relative to the working directory). A URI uses the store
  // settings of a mount of the same bucket if the configuration has one,
  // else [store]. NotFound for no such object (or a path under no mount),
  // IsDirectory for a prefix.
  Result<File> open(std::string_view where);
  Result<FileInfo> stat(std::string_view where);
  // Every key that begins with the key `prefix` names; for a local path,
  // every key under that directory.
  Result<Lister> list(std::string_view prefix);
  // Queues the objects for fetching in this order, at the configuration's
  // prefetch_concurrency (GETs in flight node-wide), evicting as reads
  // would: for a sampler's order, which only the program knows. Returns
  // when all are queued (sizes come from one LIST per directory holding
  // many of them, else a HEAD each, several at once); the GETs go on in
  // the background. Returns how many were queued; a missing key is
  // skipped, and so is what does not fit in this process's queue (16384
  // objects waiting). Already cached pages cost nothing.
  Result<std::size_t> prefetch(std::span<const std::string> keys);
  // Waits until everything this process queued has been fetched.
  void wait_prefetch();
  // Bytes of the object in RAM now (0 when not cached or not found).
  std::uint64_t cached_bytes(std::string_view where);
  // Opens where for writing (replacing the object at commit). For a path,
  // its mount must be writable (else ReadOnly). A URI needs no directory
  // to exist.
  Result<Writer> create(std::string_view where);
  CacheStats stats();

 private:
  // Internal (made by open): not exported.
  __attribute__((visibility("hidden"))) explicit Cache(std::shared_ptr<api::Shared> shared);
  std::shared_ptr<api::Shared> shared_;
};

}  // namespace objcache
