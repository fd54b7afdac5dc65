// SPDX-License-Identifier: Apache-2.0
// FdTable: which fd numbers are virtual (ours), indexed by fd. Lookups are
// lock-free and bounds-checked for every int, including negative ones and
// fds far above RLIMIT_NOFILE (dup2 can make them; libnfs's ld_nfs indexes an
// unchecked array here). Must not: take a lock or allocate on a lookup.
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>

namespace objcache::preload {

// The state of one virtual fd. Defined by the layer that serves them (a
// later issue); the table only stores pointers to it.
struct OpenFile;

// Two levels: a fixed top array of chunk pointers covering every
// non-negative int, and chunks of 64Ki slots mapped on first use and never
// freed, so a reader can never see a chunk disappear under it (no lock, no
// hazard pointers). Growth is by installing a chunk with compare-and-swap;
// nothing is ever moved, so "grown safely" needs no RLIMIT_NOFILE guess and
// survives a later setrlimit. Cost: 256 KiB of untouched .bss (no RSS) plus
// 512 KiB of lazily touched address space per 64Ki fd numbers in use.
//
// Lifetime of the OpenFile objects (close racing a read on another thread)
// is the owner's business; the table only publishes pointers.
class FdTable {
 public:
  static constexpr unsigned kChunkBits = 16;
  static constexpr unsigned kChunkSlots = 1u << kChunkBits;
  static constexpr unsigned kChunkCount = (static_cast<unsigned>(INT_MAX) >> kChunkBits) + 1;

  constexpr FdTable() = default;
  FdTable(const FdTable&) = delete;
  FdTable& operator=(const FdTable&) = delete;

  // The entry for fd, or nullptr (also for fd < 0, such as AT_FDCWD).
  OpenFile* find(int fd) const noexcept {
    if (fd < 0) return nullptr;
    const auto u = static_cast<unsigned>(fd);
    const unsigned hi = u >> kChunkBits;
    if (hi >= kChunkCount) return nullptr;  // unreachable for an int; kept as the bounds check
    // acquire: pairs with the release that installed the chunk, so its
    // zeroed slots are visible.
    Chunk* c = chunks_[hi].load(std::memory_order_acquire);
    if (c == nullptr) return nullptr;
    // acquire: pairs with insert()'s release, so the OpenFile's contents
    // written before it was published are visible.
    return std::atomic_ref<OpenFile*>(c->slot[u & (kChunkSlots - 1)])
        .load(std::memory_order_acquire);
  }

  // True if any fd is registered: the cheap test before the rarer scans
  // (close_range, exec, fclose).
  bool any() const noexcept {
    // relaxed: a hint. An fd registered on another thread is only known to
    // this one through some synchronisation with that thread (it returned
    // the number), which orders this load after the increment.
    return live_.load(std::memory_order_relaxed) != 0;
  }

  // True if any fd in [first, last] is registered (close_range semantics:
  // unsigned bounds, last may be ~0U).
  bool any_in_range(unsigned first, unsigned last) const noexcept;

  // Calls fn(fd, file) for each registered fd in [first, last], in order;
  // stops early when fn returns false. Entries added or removed meanwhile
  // may or may not be seen.
  template <typename F>
  void for_each_in_range(unsigned first, unsigned last, F&& fn) const noexcept {
    if (!any() || first > last || first > static_cast<unsigned>(INT_MAX)) return;
    if (last > static_cast<unsigned>(INT_MAX)) last = static_cast<unsigned>(INT_MAX);
    for (unsigned hi = first >> kChunkBits; hi <= (last >> kChunkBits); ++hi) {
      Chunk* c = chunks_[hi].load(std::memory_order_acquire);
      if (c == nullptr) continue;
      const unsigned lo_i = hi == (first >> kChunkBits) ? (first & (kChunkSlots - 1)) : 0;
      const unsigned hi_i = hi == (last >> kChunkBits) ? (last & (kChunkSlots - 1)) : kChunkSlots - 1;
      for (unsigned i = lo_i; i <= hi_i; ++i) {
        OpenFile* f = std::atomic_ref<OpenFile*>(c->slot[i]).load(std::memory_order_acquire);
        if (f != nullptr && !fn(static_cast<int>((hi << kChunkBits) | i), f)) return;
      }
    }
  }

  // Registers `file` at fd. Fails (false) if fd < 0, the slot is taken, or
  // the chunk cannot be mapped; the table is then unchanged.
  [[nodiscard]] bool insert(int fd, OpenFile* file) noexcept;

  // Unregisters fd and returns what was there (nullptr if nothing).
  OpenFile* remove(int fd) noexcept;

 private:
  struct Chunk {
    OpenFile* slot[kChunkSlots];  // accessed only through std::atomic_ref
  };
  Chunk* chunk_for_insert(unsigned hi) noexcept;

  std::atomic<Chunk*> chunks_[kChunkCount] = {};
  std::atomic<long> live_{0};
};

}  // namespace objcache::preload
