// SPDX-License-Identifier: Apache-2.0
// Writes: what changes a writable mount. Files are written through
// StagedFiles; names change here: unlink (DELETE), mkdir (a zero-byte
// "dir/" marker, so an empty directory lists in the bucket too), rmdir,
// rename (free for a file still being written; a server-side copy then a
// delete for an object that is complete, parts copied above 5 GiB; every
// object of a directory, up to rename_limit). After each change every
// process of the node sees it at once (the metadata cache forgets the
// names involved). A mount that is not writable answers ReadOnly to all.
// Thread-safe; nothing here throws past Vfs (which catches bad_alloc).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fill/gate.h"
#include "meta/metadata_cache.h"
#include "objcache/config.h"
#include "objcache/metadata.h"
#include "objcache/page_cache.h"
#include "objcache/staged_file.h"
#include "store/store_set.h"
#include "upload/staging_dir.h"

namespace objcache::upload {

// Reads bytes of a file node into out (the Vfs's read), for a
// read-modify-write: the object's bytes are staged before it is changed.
using ReadNode = std::function<Result<std::size_t>(const Node&, std::uint64_t, std::span<std::byte>)>;

class Writes {
 public:
  // Objects a directory rename copies at most; beyond, EXDEV (and a log
  // line), as overlayfs answers for a rename it cannot do in place.
  static constexpr std::size_t kRenameLimit = 10000;
  // Objects up to this size are copied with one CopyObject.
  static constexpr std::uint64_t kCopyObjectMax = 5ull << 30;

  Writes(const Config& cfg, PageCache& cache, store::StoreSet& stores, meta::MetadataCache& meta, ReadNode read);

  bool writable(int m) const;
  // open(2)'s flags: O_CREAT, O_EXCL, O_TRUNC, O_APPEND, the access mode.
  // local_path is the path as the program named it (for the sidecar).
  // Parents::Exist: a new file's directory must exist, as in a file
  // system; Parents::Implied: any key may be made (the library API's
  // URIs: a bucket has no directories to make first).
  enum class Parents { Exist, Implied };
  Result<std::unique_ptr<StagedFile>> open_for_write(int m, const std::string& key, int flags,
                                                     const std::string& local_path,
                                                     Parents parents = Parents::Exist);
  // A staged file that the previous program image of this process left
  // open on fd (exec keeps the pid and the fds); uploaded whole at commit.
  Result<std::unique_ptr<StagedFile>> resume(const std::string& data_path, int fd);
  Result<void> unlink(int m, const std::string& key);
  Result<void> mkdir(int m, const std::string& key);
  Result<void> rmdir(int m, const std::string& key);
  Result<void> rename(int m, const std::string& from, int to_mount, const std::string& to, bool no_replace);
  Result<void> truncate(int m, const std::string& key, std::uint64_t size);

  // Staged files whose objects are not in the bucket (cachectl uploads).
  Result<std::vector<upload::StagedInfo>> staged();
  // Uploads a staged file whose writer is gone (or failed); removes it
  // once the object is complete.
  Result<void> retry(const upload::StagedInfo& s);
  // Drops a staged file (and aborts its multipart upload, if one is open).
  Result<void> discard(const upload::StagedInfo& s);

 private:
  const MountConfig& mount(int m) const { return cfg_.mounts[static_cast<std::size_t>(m)]; }
  Result<const StagingDir*> staging();
  Result<Node> stat(int m, const std::string& key);
  // A StagedFile of mount m over the staged file `info`.
  std::unique_ptr<StagedFile::Impl> make_impl(int m, ObjectStore* store, const StagedInfo& info,
                                              const StagingDir* dir);
  Result<void> check_parent(int m, const std::string& key);
  Result<std::string> copy_object(ObjectStore& st, const std::string& from, const std::string& to, std::uint64_t size);
  Result<void> rename_file(int m, ObjectStore& st, const Node& from, const std::string& to);
  Result<void> rename_dir(int m, ObjectStore& st, const std::string& from, const std::string& to);
  // The mount a staged file belongs to (by its local path and bucket).
  std::optional<int> mount_of(const StagedInfo& s) const;

  const Config& cfg_;
  PageCache& cache_;
  store::StoreSet& stores_;
  meta::MetadataCache& meta_;
  ReadNode read_;

  std::mutex mu_;
  std::optional<StagingDir> staging_;  // opened on first use
};

}  // namespace objcache::upload
