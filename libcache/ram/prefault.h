// SPDX-License-Identifier: Apache-2.0
// Prefaulter: keeps the never-used regions just ahead of the fill frontier
// populated, from a background thread, so that the thread filling a region
// (the HTTP client's loop, above all) does not take a page fault for every
// 4 KiB it writes. The first touch of a tmpfs page allocates and zeroes it
// (and, in a VM, may make the host back the guest's page): measured here,
// 100 KiB objects written into never-touched pages held each GET slot
// ~2 ms longer. Node-wide, SegmentHeader::populated_regions says how far
// the regions have been populated (or claimed for it); each process
// populates its own page tables as it goes. MADV_POPULATE_WRITE (Linux
// 5.14) faults pages in without writing them, so it may race with fills;
// on an older kernel it is off.
//
// It is also how a full tmpfs is found before it can hurt: a write to a
// page the file system cannot back is a SIGBUS in the program, so a
// never-used region is backed (back()) before its first item is written,
// and one the kernel cannot back is never written.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "shm/segment.h"

namespace objcache::ram {

class Prefaulter {
 public:
  explicit Prefaulter(shm::Segment& seg);
  ~Prefaulter();  // stops this process's thread and waits for it
  Prefaulter(const Prefaulter&) = delete;
  Prefaulter& operator=(const Prefaulter&) = delete;

  // Region r was taken into use for the first time: keep the regions up to
  // r + ahead() populated, starting a thread when the mark falls behind.
  void taken(std::uint32_t r);
  std::uint32_t ahead() const { return ahead_; }

  enum class Backing {
    Backed,   // every page of the region has memory behind it
    Unknown,  // the kernel cannot say (no MADV_POPULATE_WRITE)
    Full,     // the file system could not back it (tmpfs full)
  };
  // Populates one region now, in the calling thread.
  Backing back(std::uint32_t r);

 private:
  void run(std::uint32_t target);

  shm::Segment& seg_;
  std::uint32_t ahead_;
  // The pid whose thread is running, or 0: a forked child sees its
  // parent's pid here and knows the thread is not its own.
  std::atomic<pid_t> runner_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace objcache::ram
