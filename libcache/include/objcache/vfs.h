// SPDX-License-Identifier: Apache-2.0
// Vfs: the mounts as a read-only file tree. Paths map to keys (MountTable);
// stat and directory listings come from a metadata cache kept in the page
// cache's shared memory (so every process of a cache shares them, and two
// processes missing the same listing make one LIST); file bytes come from
// the page cache, filled by ranged GETs pinned to the ETag seen at open.
// Directories are synthesized from key prefixes. Thread-safe; a forked
// child builds its own fetchers on first use. Nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/export.h"
#include "objcache/metadata.h"
#include "objcache/mount_table.h"
#include "objcache/object_store.h"
#include "objcache/page_cache.h"
#include "objcache/result.h"
#include "objcache/staged_file.h"

namespace objcache {


class OBJCACHE_API Vfs {
 public:
  // Attaches (or creates) the cache cfg.cache names. Stores are made per
  // mount on first use.
  static Result<std::unique_ptr<Vfs>> open(const Config& cfg, const PageCacheOptions& opts = {});
  ~Vfs();
  Vfs(const Vfs&) = delete;
  Vfs& operator=(const Vfs&) = delete;

  const MountTable& mounts() const;
  PageCache& cache();

  // The node at a resolved path. NotFound if no such key or prefix.
  Result<Node> stat(const Resolved& where);
  // The entries of a directory node (NotFound / InvalidArgument for a file).
  Result<std::shared_ptr<const Listing>> list(const Node& dir);
  // Copies bytes [offset, offset + out.size()) of a file node into out;
  // fewer only at the end of the file. Waits for the fetch on a miss.
  Result<std::size_t> read(const Node& file, std::uint64_t offset, std::span<std::byte> out);

  // A file was opened: starts its mount's prefetch in the background
  // ("directory": the other files of its directory; "file": the rest of
  // the file). Listing a directory of a "directory" mount does the same.
  void opened(const Node& file);
  // Queues the whole file for fetching in the background, at full
  // concurrency, evicting as reads would (cachectl load). false when it
  // could not be queued (the queue full, or no thread for it).
  bool load(const Node& file);
  // This process's background fetching: what it did, wait for it, drop it.
  FetchProgress background_progress();
  void wait_background();
  void cancel_background();

  // Bytes of the file cached in RAM now.
  std::uint64_t cached_bytes(const Node& file);
  // Drops the file's pages from RAM and spill.
  void evict(const Node& file);
  // Pins (or unpins) the file's cached pages in RAM; returns the bytes
  // that were cached (and so pinned).
  std::uint64_t pin(const Node& file, bool pinned);

  // ---- writes to writable mounts (a read-only mount answers ReadOnly) ------
  // Opens the file at `where` for writing, with open(2)'s flags (O_CREAT,
  // O_EXCL, O_TRUNC, O_APPEND, the access mode). An object opened without
  // O_TRUNC is read-modify-write: its bytes are staged first. local_path:
  // the path as the program named it (kept with the staged file).
  Result<std::unique_ptr<StagedFile>> open_for_write(const Resolved& where, int flags,
                                                     const std::string& local_path);
  // A file being written that the previous program image of this process
  // left open on fd (exec keeps the pid and the fds; the shim hands the
  // staged file's path over): writes go on, and commit uploads it whole.
  // As open_for_write(where, O_WRONLY | O_CREAT | O_TRUNC), for a key
  // whose directories need not exist (the library API: a bucket has none
  // to make first). The object is replaced at commit.
  Result<std::unique_ptr<StagedFile>> create_object(const Resolved& where, const std::string& local_path);
  Result<std::unique_ptr<StagedFile>> resume_write(const std::string& data_path, int fd);
  Result<void> unlink(const Resolved& where);
  // A directory: a zero-byte "key/" marker in the bucket.
  Result<void> mkdir(const Resolved& where);
  Result<void> rmdir(const Resolved& where);
  // no_replace: AlreadyExists if `to` exists (RENAME_NOREPLACE).
  Result<void> rename(const Resolved& from, const Resolved& to, bool no_replace);
  Result<void> truncate(const Resolved& where, std::uint64_t size);
  bool writable(int mount) const;
  // Runs fn when the process exits (std::exit or a return from main),
  // before background fetching stops and the stores shut down: the shim
  // uploads there the files a program left open.
  static void at_exit(std::function<void()> fn);

  // Staged files whose objects are not in the bucket yet (their writer
  // failed or is gone): list, upload again, or drop.
  struct StagedUpload {
    std::string data_path;   // where the bytes are
    std::string local_path;  // the path the program wrote
    std::string bucket, key;
    std::string state;       // "writing", "uploading", "failed"
    std::string error;       // the last failure
    std::int64_t created = 0;  // seconds since the epoch
    std::uint64_t size = 0;
    pid_t writer = 0;
    bool writer_alive = false;  // its writer runs and has not closed it: not ours to upload
    bool closed = false;        // its writer closed it (the upload at close failed)
    std::string meta_path;
    std::string upload_id;
  };
  Result<std::vector<StagedUpload>> staged_uploads();
  Result<void> retry_upload(const StagedUpload& u);
  Result<void> discard_upload(const StagedUpload& u);

  // The store of a mount (made on first use): for what the façade does
  // not cover, such as a flat listing of a prefix page by page.
  Result<ObjectStore*> store(int mount);

  // The inode number and device of (mount, key), as stat reports them.
  static std::uint64_t ino_of(int mount, std::string_view key);
  static std::uint64_t dev_of(int mount);


 private:
  struct Impl;  // defined in vfs.cpp only
  explicit Vfs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace objcache
