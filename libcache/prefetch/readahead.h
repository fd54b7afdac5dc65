// SPDX-License-Identifier: Apache-2.0
// Readahead: the decision to fetch the pages ahead of a sequential reader of
// a large object. Per object, the page expected next and a window that
// doubles (up to kMaxBytes) while reads stay sequential; a jump starts
// over. It only decides: the fetcher queues and sends the GETs. No lock:
// each object's state is one 64-bit word of a table, updated by CAS (two
// objects hashing to one slot take it from each other; readahead is a hint).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "fetch/fetcher.h"

namespace objcache::prefetch {

class Readahead {
 public:
  static constexpr std::uint64_t kMaxBytes = 64ull << 20;  // the largest window
  static constexpr std::size_t kSlots = 4096;              // objects tracked per process

  explicit Readahead(fetch::Fetcher& fetcher);

  // After a demand read of page `page` of t (a large object): queues the
  // pages ahead while the reads are sequential.
  void after_read(const fetch::FetchTarget& t, std::uint32_t page);

 private:
  fetch::Fetcher& fetcher_;
  // Per slot: [tag:16][next page:24][window:12][queued beyond next:12]
  // (relaxed: a hint; the CAS makes each update whole).
  std::array<std::atomic<std::uint64_t>, kSlots> slots_{};
};

}  // namespace objcache::prefetch
