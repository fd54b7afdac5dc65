// SPDX-License-Identifier: Apache-2.0
// StreamingUpload: the bytes of one staged file going to one key. While the
// writer writes sequentially, each completed part is uploaded while it goes
// on (at most `concurrency` parts in flight, each holding a slot of the
// node-wide gate), so finish() waits only for the tail and the completion.
// Parts are 8 MiB, doubling every 1,000 parts, so 10,000 parts always
// suffice (up to 8 TiB). A write anywhere but the end of what was written
// stops streaming: finish() then uploads the whole file. When the caller
// cannot see every write (stdio buffers, writable mappings), finish()
// checks each part sent against the file and sends the file again on any
// difference, so an object is never a mix. A file up to one part is one PUT.
// Thread-safe; part replies arrive on the store's thread.
#pragma once

#include <condition_variable>
#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "fill/gate.h"
#include "objcache/object_store.h"

namespace objcache::upload {

// Part n (1-based) of an upload: where it starts and how long it is.
std::uint64_t part_size(int n);
std::uint64_t part_start(int n);

class StreamingUpload {
 public:
  struct Options {
    int concurrency = 16;             // parts in flight (store.upload_concurrency)
    fill::Gate* gate = nullptr;       // the node-wide gate, or none
    int gate_cap = 32;                // its cap (store.prefetch_concurrency)
  };

  // fd: the staged file, open for reading (kept open by the caller).
  StreamingUpload(ObjectStore& store, std::string key, int fd, Options opts);
  ~StreamingUpload();
  StreamingUpload(const StreamingUpload&) = delete;
  StreamingUpload& operator=(const StreamingUpload&) = delete;

  // The writer wrote [offset, offset + len) of the file.
  void wrote(std::uint64_t offset, std::uint64_t len);
  // Writes happened that this object cannot see the range of: stop streaming.
  void stop_streaming();
  // Writes may happen that nobody reports: check the parts sent at finish.
  void verify_at_finish();
  // Uploads what is not sent yet of a file of `size` bytes and completes the
  // object; its ETag. On failure the multipart upload is aborted (best
  // effort) and the error returned. Call once.
  Result<std::string> finish(std::uint64_t size);
  // Gives up: waits for the parts in flight and aborts the multipart upload.
  void abort();

  std::string key() const;
  // The key changes before anything is sent (a rename of a file being
  // written): false if parts went to the old key already.
  bool rename_to(std::string key);
  // The multipart upload in progress, "" when none (for the sidecar).
  std::string upload_id() const;
  std::uint64_t bytes_sent() const;
  std::uint64_t requests() const;

 private:
  struct Part {
    int number = 0;
    std::uint64_t start = 0;
    std::uint64_t size = 0;
    std::uint64_t checksum = 0;
    std::string etag;
    bool done = false;
  };

  // With mu_ held: launches the parts that are complete, while slots allow.
  // block: wait for slots (finish) rather than leave parts for later.
  Result<void> launch_ready(std::unique_lock<std::mutex>& lk, bool block);
  Result<void> ensure_multipart(std::unique_lock<std::mutex>& lk);
  void part_done(std::size_t index, const Result<std::string>& etag);
  Result<void> wait_in_flight(std::unique_lock<std::mutex>& lk);
  Result<std::string> put_whole(std::uint64_t size);
  Result<bool> parts_match_file();
  void abort_multipart(std::unique_lock<std::mutex>& lk);

  ObjectStore& store_;
  const pid_t owner_;  // the process that uploads (a forked child's copy does nothing)
  const int fd_;
  const Options opts_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // a part finished
  std::string key_;
  std::string upload_id_;
  std::vector<Part> parts_;
  std::uint64_t written_end_ = 0;  // [0, written_end_) was written in order
  std::uint64_t size_limit_ = ~0ull;  // finish(): the file's size
  int next_part_ = 1;
  int in_flight_ = 0;
  bool streaming_ = true;
  bool verify_ = false;
  bool finished_ = false;
  Error failure_;  // the first part that failed
  bool failed_ = false;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t requests_ = 0;
};

}  // namespace objcache::upload
