// SPDX-License-Identifier: Apache-2.0
#include "prefetch/readahead.h"

#include <algorithm>
#include <memory>

namespace objcache::prefetch {

Readahead::Readahead(fetch::Fetcher& fetcher) : fetcher_(fetcher) {}

void Readahead::after_read(const fetch::FetchTarget& t, std::uint32_t page) {
  if (t.size <= fetch::kSmallObjectMax) return;  // fetched whole by the first read
  const std::uint32_t pages = fetcher_.page_count(t);
  const auto max_window =
      static_cast<std::uint32_t>(std::max<std::uint64_t>(2, kMaxBytes / fetcher_.page_size()));
  std::uint32_t from = 0;
  std::uint32_t to = 0;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (sequences_.size() >= kMaxSequences) sequences_.clear();
    Sequence& s = sequences_[t.id.lo ^ t.id.hi];
    if (page + 1 == s.next) return;  // the same page again
    s.window = (page == s.next && s.window > 0) ? std::min(s.window * 2, max_window) : 2;
    if (page != s.next) s.ahead_until = 0;  // a jump: start over
    s.next = page + 1;
    from = std::max(page + 1, s.ahead_until);
    to = std::min(pages, page + 1 + s.window);
    if (to <= from) return;
    s.ahead_until = to;
  }
  fetcher_.enqueue(fill::Priority::Readahead, std::make_shared<const fetch::FetchTarget>(t), from, to - from);
}

}  // namespace objcache::prefetch
