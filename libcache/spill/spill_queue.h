// SPDX-License-Identifier: Apache-2.0
// The spill tier's write-behind queue: blocks copied by submit() wait here,
// bounded in bytes and in count, until the one writer thread of this
// process hands each to the writer function. Belongs to the pid that
// started it: a forked child must never touch its mutex or thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "objcache/result.h"
#include "spill/spill_format.h"
#include "spill/spill_store.h"

namespace objcache::spill {

struct PendingBlock {
  BlockKey key;
  std::uint64_t object_offset = 0;
  std::uint32_t data_len = 0;
  std::uint16_t etag_len = 0;
  char etag[kEtagMax] = {};
  // kHeaderSize bytes for the writer to fill, then data_len bytes of data:
  // one buffer, one pwrite.
  std::unique_ptr<std::byte[]> buf;
};

class SpillQueue {
 public:
  // Called on the writer thread, one block at a time; must not throw.
  using Writer = std::function<void(PendingBlock&)>;

  // Starts the writer thread (with every signal it may block blocked, so
  // the host's handlers never run on it and SIGXFSZ cannot kill the host).
  static Result<std::unique_ptr<SpillQueue>> start(std::size_t max_bytes, std::size_t max_blocks,
                                                   Writer writer);
  // Writes what is queued, then stops and joins the thread. Only in the
  // process that started it.
  ~SpillQueue();
  SpillQueue(const SpillQueue&) = delete;
  SpillQueue& operator=(const SpillQueue&) = delete;

  // A lock-free hint that bytes more would fit (push() decides).
  bool has_room(std::size_t bytes) const;
  // Queues b unless that would pass either bound; false = not queued.
  bool push(PendingBlock&& b);
  // Returns once every block pushed before the call has been written.
  void flush();
  pid_t owner() const { return owner_; }

 private:
  SpillQueue(std::size_t max_bytes, std::size_t max_blocks, Writer writer);
  void run();

  const std::size_t max_bytes_;
  const std::size_t max_blocks_;
  const Writer writer_;
  const pid_t owner_;
  // relaxed: a hint for has_room(); the truth is bytes_ under mu_.
  std::atomic<std::size_t> bytes_hint_{0};

  std::mutex mu_;
  std::condition_variable work_cv_;  // something queued, or stopping
  std::condition_variable idle_cv_;  // queue drained
  std::deque<PendingBlock> queue_;
  std::size_t bytes_ = 0;           // data bytes queued or being written
  std::uint64_t pushed_ = 0;        // blocks ever queued
  std::uint64_t done_ = 0;          // blocks ever handed to the writer and back
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace objcache::spill
