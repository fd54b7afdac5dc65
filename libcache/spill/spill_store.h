// SPDX-License-Identifier: Apache-2.0
// The SSD tier: pages evicted from RAM are written, checksummed, into a
// circular log on local disk that every process of the cache shares, and a
// RAM miss looks here before the store. Nothing ever fails because of this
// tier: an I/O error turns it off for the process, a bad block is a miss.
// Knows nothing of S3, of the RAM tier or of the shim.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/result.h"

namespace objcache::spill {

class SpillIndex;
class SpillQueue;
struct PendingBlock;
struct IndexSlot;

// One cached page: the object's 128-bit identity (which includes its ETag)
// and the page number within it.
struct BlockKey {
  std::uint64_t id_lo = 0, id_hi = 0;
  std::uint32_t page = 0;
};

struct SpillOptions {
  std::string dir;                        // spill_dir; created 0700 if missing
  std::string cache_name;                 // [A-Za-z0-9._-]+, names the files
  std::uint64_t capacity = 0;             // bytes of block log (rounded down to 4 KiB), <= 16 TiB
  std::uint64_t page_size = 0;            // bytes, largest block; <= 64 MiB
  std::size_t max_queue_bytes = 64u << 20;  // bytes of data waiting to be written; default 64 MiB

  // The spill tier of a [cache] section (spill_dir, name, spill_size, page_size).
  static SpillOptions from(const CacheConfig& cache) {
    SpillOptions o;
    o.dir = cache.spill_dir;
    o.cache_name = cache.name;
    o.capacity = cache.spill_size;
    o.page_size = cache.page_size;
    return o;
  }
};

struct SpillStats {
  std::uint64_t hits = 0;             // read() returned data
  std::uint64_t misses = 0;           // read() returned NotFound
  std::uint64_t checksum_errors = 0;  // blocks found damaged (by read or verify) and dropped
  std::uint64_t writes = 0;           // blocks written and published
  std::uint64_t dropped = 0;          // submissions never written (queue full, off, I/O error, lapped)
  std::uint64_t used_bytes = 0;       // of the shared log (all processes)
  std::uint64_t capacity = 0;         // bytes
  bool disabled = false;              // turned off in this process by an I/O error
  std::uint64_t duplicates = 0;       // submissions skipped: a recent copy was already on disk
  std::uint64_t marked_hits = 0;      // hits served on a verified mark, without the checksum pass
};

struct VerifyReport {
  std::uint64_t blocks_checked = 0;
  std::uint64_t bad_blocks = 0;  // dropped from the index
};

// Shared by the processes of one cache name and user; each process opens
// its own SpillStore. Thread-safe. Fork-safe: a child may keep using the
// parent's object; it gets its own writer thread on its first submit().
// Counters are per object (a forked child starts from its parent's).
class SpillStore {
 public:
  // At most this many blocks wait in the queue, whatever their size.
  static constexpr std::size_t kMaxQueueBlocks = 4096;

  // Opens or creates the files in opts.dir. Files of another geometry or
  // version are replaced (logged). InvalidArgument for bad options; an
  // IoError/AccessDenied when the directory or files are unusable.
  static Result<std::unique_ptr<SpillStore>> open(const SpillOptions& opts);
  // Writes what this process queued, then closes.
  ~SpillStore();
  SpillStore(const SpillStore&) = delete;
  SpillStore& operator=(const SpillStore&) = delete;

  // Copies data (<= page_size bytes) into the write queue and returns at
  // once; false = dropped (queue full, tier off, too large). A block whose
  // recent copy is already on disk is not written again. The ETag is kept
  // (first 64 bytes) for verification and debugging only.
  bool submit(const BlockKey& key, std::string_view etag, std::uint64_t object_offset,
              std::span<const std::byte> data);
  // Copies the block into out and returns its length. NotFound on a miss
  // (an overwritten block too), ChecksumError when the only copies found
  // were damaged (dropped; never wrong bytes); then the bytes of out are
  // unspecified. InvalidArgument if out is shorter
  // than the block.
  //
  // The checksum pass is skipped for a block found good before, while the
  // data file has not been written since (by anyone: its ctime is where it
  // was) and the read came from the page cache (RWF_NOWAIT: bytes once
  // checked, not read from the device again). Only where the file system
  // gives every change a distinct ctime (Linux >= 6.13: ext4, xfs, btrfs,
  // tmpfs); elsewhere every read is checked.
  Result<std::size_t> read(const BlockKey& key, std::span<std::byte> out);
  // Whether the index holds a live entry for key, without I/O. A false
  // positive is possible (15-bit tags collide about once in 32768 probes
  // of an occupied slot); read() is the authority.
  bool contains(const BlockKey& key) const;
  // Forgets key (every copy). A block of key still in this process's queue
  // may appear afterwards.
  void remove(const BlockKey& key);
  // Returns once every block this process submitted before is written.
  void flush();
  // Reads every live block and checks its header, placement and checksum;
  // bad ones are dropped and counted as checksum errors.
  VerifyReport verify();
  SpillStats stats() const;
  bool enabled() const;
  // Whether reads here may skip the checksum pass on a verified mark (the
  // file system and kernel give every write a new ctime; see read()).
  bool marks_trusted() const { return marks_trusted_; }

 private:
  enum class Check { Good, Bad, Stale, Foreign, TooSmall };

  SpillStore(const SpillOptions& opts, int data_fd, std::unique_ptr<SpillIndex> index,
             std::string data_path);
  SpillQueue* queue_for_this_process();
  void write_block(PendingBlock& b);
  Check read_into(const IndexSlot& s, const BlockKey& key, std::span<std::byte> out,
                  std::size_t* len);
  // Reads a whole block into buf and checks it; *key is the header's key.
  Check check_block(const IndexSlot& s, std::vector<std::byte>& buf, BlockKey* key);
  // Finds key's entry by reading candidate headers (no checksum); false if none.
  bool find_exact(std::uint64_t hash, const BlockKey& key, IndexSlot* found);
  // Turns the tier off for this process, logging once.
  void disable(const char* what, int err);
  // The data file's ctime in ns; false if it cannot be had.
  bool data_ctime(std::int64_t* ns) const;

  const SpillOptions opts_;
  const int data_fd_;
  const std::unique_ptr<SpillIndex> index_;
  const std::string data_path_;
  // The writer queue of the process that created it. acquire/release: a
  // queue is fully built before another thread of the process uses it.
  std::atomic<SpillQueue*> queue_{nullptr};
  // relaxed: a flag; a thread that misses the change writes or reads once
  // more, which is harmless.
  std::atomic<bool> disabled_{false};
  // Whether verified marks may be trusted here (see read()); set at open.
  bool marks_trusted_ = false;
  // Counters: relaxed, no ordering with anything.
  std::atomic<std::uint64_t> hits_{0}, misses_{0}, checksum_errors_{0}, writes_{0}, dropped_{0},
      duplicates_{0}, marked_hits_{0};
};

}  // namespace objcache::spill
