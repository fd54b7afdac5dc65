// SPDX-License-Identifier: Apache-2.0
// StagedFile: an object being written to a writable mount. Its bytes are
// staged in a local file (a real fd, so every write path works) and go to
// the bucket when it is committed: streaming while the writer writes
// sequentially, the rest at commit. commit() returns only when the object
// is complete in the bucket; a failure keeps the staged file (its path is
// logged, `cachectl uploads` lists it): nothing is lost. Made by
// Vfs::open_for_write. Thread-safe. Nothing here throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "objcache/export.h"
#include "objcache/result.h"

namespace objcache {

namespace upload {
class Writes;
}

struct CacheConfig;

// Where written bytes are staged for a configuration: cache.staging_dir,
// else <spill_dir>/staging, else /var/tmp/objcache/staging.
OBJCACHE_API std::string staging_directory(const CacheConfig& cache);

class OBJCACHE_API StagedFile {
 public:
  ~StagedFile();  // without commit: the staged file stays where it is
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // The fd the program writes through: the staged file opened with the
  // access mode and O_APPEND it asked for. The caller owns it; once.
  int take_fd();
  int mount() const;
  std::string key() const;
  // Where the bytes are staged (for messages).
  std::string staged_path() const;
  // Bytes in the staged file now.
  std::uint64_t size() const;

  // The program wrote [offset, offset + len) through the fd.
  void wrote(std::uint64_t offset, std::uint64_t len);
  // A write through the fd failed with err (ENOSPC: the staging disk is
  // full): commit will not upload a file that lacks bytes; it fails with
  // err and keeps what was staged.
  void write_failed(int err);
  // Writes may reach the file that nobody reports (stdio buffers, a
  // writable mapping, another process): commit checks before it trusts
  // what was streamed. `stop_streaming`: nothing is sent before commit.
  enum class Unseen { Buffered, Anywhere };
  void unseen_writes(Unseen how);
  // The file was truncated (ftruncate) to len.
  void truncated(std::uint64_t len);
  // The name changes (rename of a file being written): the object goes
  // to the new key only, once; the old key is deleted at commit if the
  // object existed there before.
  Result<void> rename(int mount, const std::string& key);

  // The name was removed (unlink) while the file is open: commit uploads
  // nothing and drops the staged bytes.
  void unlinked();
  // Whether this process made it: a forked child holds a copy of its
  // parent's StagedFile, and only the parent uploads (commit and sync do
  // nothing in the child, whose writes the parent finds at its commit).
  bool owned_here() const;

  // fsync: everything written so far is durable in the bucket when it
  // returns; writes after it go on, and the next sync or commit uploads the
  // new version.
  Result<void> sync();
  // close: uploads what is not in the bucket yet and completes the object;
  // on success the staged file is removed and the object is readable on
  // this node with no GET.
  Result<void> commit();

  struct Impl;

 private:
  friend class upload::Writes;  // makes them
  explicit StagedFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace objcache
