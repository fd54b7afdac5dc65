// SPDX-License-Identifier: Apache-2.0
// The spill tier's shared index: a MAP_SHARED file every process of the
// cache maps, holding the log's write cursor and an open-addressing table of
// 64-bit entries (key tag -> log position) changed only by compare-and-swap.
// Lookups take no lock and make no system call. Knows nothing of the data
// file: block headers are checked by the caller, who holds the authority.
//
// After the table, one verified mark per slot: a hash of the slot's entry
// and of the data file's change time (st_ctime, ns) at which a reader found
// the block's checksum good. A mark only ever matches that entry at that
// change time: a new entry in the slot, or any write to the data file by
// anyone (which moves its ctime), voids it without touching it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "spill/spill_format.h"

namespace objcache::spill {

struct Geometry {
  std::uint64_t capacity = 0;    // bytes of log, multiple of kBlockAlign
  std::uint64_t page_size = 0;   // largest block data, bytes
  std::uint64_t slot_count = 0;  // power of two
};

// One index entry as a probe saw it.
struct IndexSlot {
  std::uint64_t slot = 0;         // position in the table
  std::uint64_t entry = 0;        // the raw value (for CAS)
  std::uint64_t logical = 0;      // the block's log position, bytes
  std::uint64_t alloc_bytes = 0;  // bytes the block takes in the log
};

class SpillIndex {
 public:
  // One slot per 32 KiB of capacity (a 2x margin for a mean block of 64 KiB,
  // the smallest page size), at least 1024; a power of two. 64 GiB of
  // spill costs a 16 MiB index. More small blocks than that simply push
  // the oldest entries out of their probe window.
  static std::uint64_t slot_count_for(std::uint64_t capacity);
  static std::uint64_t file_size(std::uint64_t slot_count) {
    return kIndexHeaderSize + 2 * slot_count * sizeof(std::uint64_t);  // entries, then marks
  }
  // Writes a fresh header into a zero-filled mapping of file_size() bytes.
  static void format(void* map, const Geometry& g, std::uint64_t nonce);
  // Why the mapped header h (file of file_bytes) cannot be used with g;
  // "" when it can.
  static std::string check(const IndexHeader& h, const Geometry& g, std::uint64_t file_bytes);

  // Takes over a mapping of a checked index file; unmaps it when destroyed.
  SpillIndex(void* map, std::size_t map_len);
  ~SpillIndex();
  SpillIndex(const SpillIndex&) = delete;
  SpillIndex& operator=(const SpillIndex&) = delete;

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t page_size() const { return header_->page_size; }
  std::uint64_t slot_count() const { return mask_ + 1; }
  std::uint64_t nonce() const { return header_->nonce; }
  std::uint64_t cursor() const {
    // seq_cst: see IndexHeader::cursor (a reader's re-check after pread).
    return header_->cursor.load(std::memory_order_seq_cst);
  }
  // Bytes of the data file that hold blocks written in the current lap.
  std::uint64_t used_bytes() const;

  // Reserves alloc_bytes (<= capacity) of log that do not straddle the end
  // of the file (the tail is skipped); returns its logical offset.
  std::uint64_t allocate(std::uint64_t alloc_bytes);
  // True while no allocation has reached the block at logical.
  bool intact(std::uint64_t logical) const { return cursor() <= logical + capacity_; }

  // Calls fn(const IndexSlot&) for each fresh entry tagged like hash, in
  // probe order, until fn returns true; returns whether one did.
  template <typename Fn>
  bool probe(std::uint64_t hash, Fn&& fn) const;
  // Calls fn(const IndexSlot&) for every fresh entry of the table.
  template <typename Fn>
  void for_each_fresh(Fn&& fn) const;
  // Whether slot lies in hash's probe window (a placement check for verify).
  bool in_window(std::uint64_t hash, std::uint64_t slot) const {
    return ((slot - (hash & mask_)) & mask_) < probe_len_;
  }

  // Publishes a written block: into the slot of `replace` if it still holds
  // that entry, else the first free (empty, removed or stale) slot of the
  // window, else over the oldest entry there. False only after losing
  // several races in a row (the block then stays unreachable).
  bool publish(std::uint64_t hash, std::uint64_t logical, std::uint64_t alloc_bytes,
               const IndexSlot* replace);
  // Removes the entry s saw, unless it changed since. True if removed.
  bool drop(const IndexSlot& s);

  // Whether s's block was found good while the data file's ctime was
  // ctime_ns (and s's entry is still the one it was found under).
  bool marked(const IndexSlot& s, std::int64_t ctime_ns) const {
    // relaxed: a mark is a claim bound to (entry, ctime); the reader that
    // trusts it checks the ctime itself after its own read.
    return marks_[s.slot].load(std::memory_order_relaxed) == mark_of(s.entry, ctime_ns);
  }
  void mark(const IndexSlot& s, std::int64_t ctime_ns) {
    marks_[s.slot].store(mark_of(s.entry, ctime_ns), std::memory_order_relaxed);
  }

 private:
  std::uint64_t age_now(std::uint64_t e) const { return entry::age(e, cursor()); }
  // Never 0 (the marks of a new file), so no entry is marked by default.
  static std::uint64_t mark_of(std::uint64_t entry, std::int64_t ctime_ns) {
    const std::uint64_t v[2] = {entry, static_cast<std::uint64_t>(ctime_ns)};
    return checksum64(v, sizeof v, 0x6d61726b) | 1;
  }

  IndexHeader* header_;
  std::atomic<std::uint64_t>* slots_;
  std::atomic<std::uint64_t>* marks_;  // slot_count of them, after slots_
  std::uint64_t mask_;
  std::uint64_t capacity_;
  std::uint32_t probe_len_;
  void* map_;
  std::size_t map_len_;
};

template <typename Fn>
bool SpillIndex::probe(std::uint64_t hash, Fn&& fn) const {
  const std::uint64_t tag = key_tag(hash);
  const std::uint64_t home = hash & mask_;
  for (std::uint32_t i = 0; i < probe_len_; ++i) {
    const std::uint64_t slot = (home + i) & mask_;
    // acquire: pairs with publish()'s release CAS, so the block's pwrite
    // returned before we pread it.
    const std::uint64_t e = slots_[slot].load(std::memory_order_acquire);
    if (e == entry::kEmpty) return false;  // slots never return to empty
    if (!entry::is_live(e) || entry::tag(e) != tag) continue;
    const std::uint64_t cur = cursor();  // loaded after e: see entry::age
    const std::uint64_t age = entry::age(e, cur);
    if (age > capacity_) continue;
    if (fn(IndexSlot{slot, e, cur - age, entry::alloc_bytes(e)})) return true;
  }
  return false;
}

template <typename Fn>
void SpillIndex::for_each_fresh(Fn&& fn) const {
  for (std::uint64_t slot = 0; slot <= mask_; ++slot) {
    // acquire: as in probe().
    const std::uint64_t e = slots_[slot].load(std::memory_order_acquire);
    if (!entry::is_live(e)) continue;
    const std::uint64_t cur = cursor();
    const std::uint64_t age = entry::age(e, cur);
    if (age > capacity_) continue;
    fn(IndexSlot{slot, e, cur - age, entry::alloc_bytes(e)});
  }
}

}  // namespace objcache::spill
