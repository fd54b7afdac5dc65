// SPDX-License-Identifier: Apache-2.0
#include "fd_table.h"

#include "real.h"

namespace objcache::preload {

FdTable::Chunk* FdTable::chunk_for_insert(unsigned hi) noexcept {
  Chunk* c = chunks_[hi].load(std::memory_order_acquire);
  if (c != nullptr) return c;
  // Anonymous zero pages: a null pointer in every slot, no RSS until used.
  // Through the real mmap, never our own entry point.
  void* mem = real::fn<Sym::mmap>()(nullptr, sizeof(Chunk), PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return nullptr;
  auto* fresh = static_cast<Chunk*>(mem);
  Chunk* expected = nullptr;
  // acq_rel: release publishes the zeroed chunk; acquire, on failure, sees
  // the winner's chunk.
  if (chunks_[hi].compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return fresh;
  real::fn<Sym::munmap>()(mem, sizeof(Chunk));
  return expected;
}

bool FdTable::insert(int fd, OpenFile* file) noexcept {
  if (fd < 0 || file == nullptr) return false;
  const auto u = static_cast<unsigned>(fd);
  Chunk* c = chunk_for_insert(u >> kChunkBits);
  if (c == nullptr) return false;
  // Counted before it is visible, so any() is never false while find() can
  // return this entry (relaxed: any() is a hint, see there).
  live_.fetch_add(1, std::memory_order_relaxed);
  OpenFile* expected = nullptr;
  // release: publishes *file to find()'s acquire.
  if (std::atomic_ref<OpenFile*>(c->slot[u & (kChunkSlots - 1)])
          .compare_exchange_strong(expected, file, std::memory_order_release,
                                   std::memory_order_relaxed)) {
    return true;
  }
  live_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

OpenFile* FdTable::remove(int fd) noexcept {
  if (fd < 0) return nullptr;
  const auto u = static_cast<unsigned>(fd);
  Chunk* c = chunks_[u >> kChunkBits].load(std::memory_order_acquire);
  if (c == nullptr) return nullptr;
  // acq_rel: acquire the entry's contents for the caller, release the
  // emptied slot.
  OpenFile* old = std::atomic_ref<OpenFile*>(c->slot[u & (kChunkSlots - 1)])
                      .exchange(nullptr, std::memory_order_acq_rel);
  if (old != nullptr) live_.fetch_sub(1, std::memory_order_relaxed);
  return old;
}

bool FdTable::any_in_range(unsigned first, unsigned last) const noexcept {
  bool found = false;
  for_each_in_range(first, last, [&](int, OpenFile*) {
    found = true;
    return false;
  });
  return found;
}

}  // namespace objcache::preload
