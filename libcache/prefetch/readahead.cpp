// SPDX-License-Identifier: Apache-2.0
#include "prefetch/readahead.h"

#include <algorithm>
#include <memory>

namespace objcache::prefetch {

Readahead::Readahead(fetch::Fetcher& fetcher) : fetcher_(fetcher) {}

namespace {

struct State {
  std::uint32_t tag = 0;      // 16 bits of the object's hash
  std::uint32_t next = 0;     // the page expected next (24 bits)
  std::uint32_t window = 0;   // pages (12 bits)
  std::uint32_t ahead = 0;    // pages queued beyond next (12 bits)
};

State unpack(std::uint64_t w) {
  return State{static_cast<std::uint32_t>(w >> 48), static_cast<std::uint32_t>((w >> 24) & 0xffffff),
               static_cast<std::uint32_t>((w >> 12) & 0xfff), static_cast<std::uint32_t>(w & 0xfff)};
}

std::uint64_t pack(const State& s) {
  return (static_cast<std::uint64_t>(s.tag & 0xffff) << 48) | (static_cast<std::uint64_t>(s.next & 0xffffff) << 24) |
         (static_cast<std::uint64_t>(std::min<std::uint32_t>(s.window, 0xfff)) << 12) |
         std::min<std::uint32_t>(s.ahead, 0xfff);
}

}  // namespace

void Readahead::after_read(const fetch::FetchTarget& t, std::uint32_t page) {
  if (t.size <= fetch::kSmallObjectMax) return;  // fetched whole by the first read
  if (page >= 0xffffff) return;                  // beyond what a slot can say: no readahead
  const std::uint32_t pages = fetcher_.page_count(t);
  const auto max_window = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(0xfff, std::max<std::uint64_t>(2, kMaxBytes / fetcher_.page_size())));
  const std::uint64_t h = t.id.lo ^ t.id.hi;
  std::atomic<std::uint64_t>& slot = slots_[h % kSlots];
  const auto tag = static_cast<std::uint32_t>(h >> 48);
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  std::uint64_t w = slot.load(std::memory_order_relaxed);
  for (;;) {
    State s = unpack(w);
    if (s.tag != tag) s = State{tag, 0, 0, 0};  // another object's: take the slot
    if (page + 1 == s.next && s.window > 0) return;  // the same page again
    const bool sequential = page == s.next && s.window > 0;
    const std::uint32_t ahead_until = sequential ? s.next + s.ahead : 0;  // a jump: start over
    State n{tag, page + 1, sequential ? std::min(s.window * 2, max_window) : 2, 0};
    from = std::max(page + 1, ahead_until);
    to = std::min(pages, page + 1 + n.window);
    n.ahead = to > n.next ? std::max(to, ahead_until) - n.next : (ahead_until > n.next ? ahead_until - n.next : 0);
    if (slot.compare_exchange_weak(w, pack(n), std::memory_order_relaxed)) break;
  }
  if (to <= from) return;
  fetcher_.enqueue(fill::Priority::Readahead, std::make_shared<const fetch::FetchTarget>(t), from, to - from);
}

}  // namespace objcache::prefetch
