// SPDX-License-Identifier: Apache-2.0
#include "ram/prefault.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>

#include "util/log.h"
#include "util/process.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace objcache::ram {
namespace {

// How far ahead of the frontier: 64 MiB of regions, at most a quarter of
// the cache, at least one region.
constexpr std::uint64_t kAheadBytes = 64ull << 20;

// Set once the kernel said no (EINVAL: before 5.14); process-wide.
std::atomic<bool> g_unsupported{false};

}  // namespace

Prefaulter::Prefaulter(shm::Segment& seg)
    : seg_(seg),
      ahead_(static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
          std::min<std::uint64_t>(kAheadBytes / seg.geometry().region_size, seg.geometry().region_count / 4), 1,
          std::max<std::uint32_t>(1, seg.geometry().region_count)))) {}

Prefaulter::~Prefaulter() {
  stop_.store(true, std::memory_order_relaxed);
  // One region takes about a millisecond; give up waiting after a second.
  for (int i = 0; i < 1000 && runner_.load(std::memory_order_acquire) == proc::self(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Prefaulter::Backing Prefaulter::back(std::uint32_t r) {
  if (g_unsupported.load(std::memory_order_relaxed)) return Backing::Unknown;
  const std::uint64_t size = seg_.geometry().region_size;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (::madvise(seg_.region_data(r), size, MADV_POPULATE_WRITE) == 0) return Backing::Backed;
    const int e = errno;
    if (e == EINTR) continue;
    if (e == EINVAL) {
      if (!g_unsupported.exchange(true)) {
        OC_INFO("no MADV_POPULATE_WRITE (Linux < 5.14): cache pages fault in as they fill, and a full "
                "shared-memory file system is not detected before a write");
      }
      return Backing::Unknown;
    }
    // EFAULT (a write would raise SIGBUS: the tmpfs is full) or ENOMEM.
    return Backing::Full;
  }
  return Backing::Unknown;
}

void Prefaulter::taken(std::uint32_t r) {
  if (g_unsupported.load(std::memory_order_relaxed) || stop_.load(std::memory_order_relaxed)) return;
  const std::uint32_t count = seg_.geometry().region_count;
  const std::uint32_t target = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, std::uint64_t{r} + 1 + ahead_));
  auto& mark = seg_.header().populated_regions;
  // Half the window still ahead: nothing to do yet.
  if (mark.load(std::memory_order_relaxed) >= std::min<std::uint64_t>(target, std::uint64_t{r} + 1 + ahead_ / 2)) return;
  const pid_t self = proc::self();
  pid_t cur = runner_.load(std::memory_order_acquire);
  if (cur == self) return;  // ours is running; it reads the mark as it goes
  if (!runner_.compare_exchange_strong(cur, self, std::memory_order_acq_rel)) return;
  try {
    std::thread([this, target] { run(target); }).detach();
  } catch (const std::exception&) {
    runner_.store(0, std::memory_order_release);  // no thread: fills fault pages in themselves
  }
}

void Prefaulter::run(std::uint32_t target) {
  auto& mark = seg_.header().populated_regions;
  while (!stop_.load(std::memory_order_relaxed)) {
    std::uint32_t m = mark.load(std::memory_order_relaxed);
    if (m >= target) break;
    // Claim region m node-wide, so two processes do not populate it twice.
    if (!mark.compare_exchange_weak(m, m + 1, std::memory_order_relaxed)) continue;
    if (back(m) != Backing::Backed) break;
  }
  runner_.store(0, std::memory_order_release);
}

}  // namespace objcache::ram
