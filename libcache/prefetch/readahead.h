// SPDX-License-Identifier: Apache-2.0
// Readahead: the decision to fetch the pages ahead of a sequential reader of
// a large object. Per object, the page expected next and a window that
// doubles (up to kMaxBytes) while reads stay sequential; a jump starts
// over. It only decides: the fetcher queues and sends the GETs.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "fetch/fetcher.h"

namespace objcache::prefetch {

class Readahead {
 public:
  static constexpr std::uint64_t kMaxBytes = 64ull << 20;  // the largest window
  static constexpr std::size_t kMaxSequences = 4096;       // objects tracked per process

  explicit Readahead(fetch::Fetcher& fetcher);

  // After a demand read of page `page` of t (a large object): queues the
  // pages ahead while the reads are sequential.
  void after_read(const fetch::FetchTarget& t, std::uint32_t page);

  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

 private:
  struct Sequence {
    std::uint32_t next = 0;
    std::uint32_t window = 0;
    std::uint32_t ahead_until = 0;  // pages below this are queued already
  };

  fetch::Fetcher& fetcher_;
  std::mutex mu_;
  std::unordered_map<std::uint64_t, Sequence> sequences_;
};

}  // namespace objcache::prefetch
