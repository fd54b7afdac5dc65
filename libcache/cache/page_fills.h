// SPDX-License-Identifier: Apache-2.0
// The part of PageCache that the fetcher uses and nothing outside libcache
// sees: fills started without waiting (readahead, prefetch, the other pages
// of a small object fetched by one GET) and the node-wide GET gate. A
// pending fill holds its page's claim and a reservation of room for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "fill/gate.h"
#include "objcache/page_cache.h"

namespace objcache::cache {

// A fill started by try_begin_fill: the page is claimed by this process and
// room for it reserved. Write exactly ref.length bytes into data, then call
// end_fill, once, from any thread (or abandon_fill at exit).
struct PendingFill {
  PageRef ref;
  std::span<std::byte> data;
  // The claim and the reservation (page_cache.cpp's business).
  std::uint32_t claim_slot = 0;
  std::int64_t claim_started_ns = 0;
  bool claimed = false;
  std::uint32_t region = 0;
  std::uint32_t offset = 0;
  std::uint32_t gen = 0;
  void* header = nullptr;
};

// Why try_begin_fill started no fill.
enum class FillSkip {
  Cached,  // in RAM, or brought back to RAM from the spill tier
  Busy,    // a live process is filling it (a dead one's claim is taken over)
  NoRoom,  // no room (may_evict false: no free room; else nothing evictable)
};

// Starts filling a page without waiting. nullopt when there is nothing to
// do now, and why in *why (when given).
std::optional<PendingFill> try_begin_fill(PageCache& pc, const PageRef& ref, bool may_evict,
                                          FillSkip* why = nullptr);
// Ends a fill: got == ref.length publishes the page, anything else
// abandons it (waiters then fetch it themselves). Counts the bytes as
// remote_bytes, and as prefetched_bytes if prefetched; the request itself
// is counted by the caller (PageCache::count_remote).
void end_fill(PageCache& pc, PendingFill& fill, const Result<std::size_t>& got, bool prefetched);
// Gives up a fill whose buffer may still be written to (a GET in flight at
// process exit): waiters are released to fetch the page themselves; the
// room stays reserved (never reused while this process lives, given back
// when it is gone). No end_fill may follow.
void abandon_fill(PageCache& pc, PendingFill& fill);
// The node-wide limit on GETs in flight (fill/gate.h).
fill::Gate& gate(PageCache& pc);
// How many wait for the page's filler now (fill::ClaimTable::waiters): for
// tests that must know a reader is blocked before they act.
std::uint32_t fill_waiters(PageCache& pc, const PageRef& ref);

}  // namespace objcache::cache
