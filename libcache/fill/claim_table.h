// SPDX-License-Identifier: Apache-2.0
// ClaimTable: who fills a missing page. One process claims it; the others
// sleep on a futex word in shared memory until it is done, then look again
// (or get the filler's error). A filler whose pid is gone, or that takes
// longer than the fill deadline, is taken over. Knows nothing of S3.
#pragma once

#include <chrono>
#include <cstdint>

#include "objcache/result.h"
#include "shm/segment.h"

namespace objcache::fill {

struct Claim {
  enum class Kind {
    Mine,       // we fill the page, then call complete()
    Done,       // another process filled it: look it up again
    Unclaimed,  // the table was full around this key: fill without coordination
    Busy,       // another process is filling it and we asked not to wait
  };
  Kind kind = Kind::Unclaimed;
  std::uint32_t slot = 0;
  // Mine: when our claim (or our take-over) started; a filler that was
  // taken over finds another value there, and complete() leaves the claim
  // to whoever holds it now.
  std::int64_t started_ns = 0;
};

class ClaimTable {
 public:
  // fill_deadline bounds how long a live filler may hold a claim before
  // waiters take over (a pid reused by another process looks alive).
  ClaimTable(shm::Segment& seg, std::chrono::milliseconds fill_deadline)
      : seg_(seg), fill_deadline_(fill_deadline) {}

  // Claims (id, page) or waits for its filler. The error of a failed fill
  // reaches every waiter.
  Result<Claim> acquire(std::uint64_t id_lo, std::uint64_t id_hi, std::uint32_t page);
  // As acquire(), but Busy instead of waiting for a live filler; the claim
  // of a dead or overdue filler is taken over (Mine) as acquire() would.
  Result<Claim> try_acquire(std::uint64_t id_lo, std::uint64_t id_hi, std::uint32_t page);
  // Ends our claim with the fill's outcome and wakes the waiters; nothing
  // if it was taken over meanwhile (we overran the fill deadline).
  void complete(const Claim& c, Status outcome);
  // How many processes (threads) sleep on the claim of (id, page) now; 0
  // when nobody fills it. For tests that must know a waiter is blocked.
  std::uint32_t waiters(std::uint64_t id_lo, std::uint64_t id_hi, std::uint32_t page) const;

  // How often a waiter checks that its filler is alive.
  static constexpr std::chrono::milliseconds kPollInterval{20};

 private:
  static constexpr std::uint32_t kWindow = 16;
  Result<Claim> claim(std::uint64_t lo, std::uint64_t hi, std::uint32_t page, bool wait);
  Result<Claim> wait_for(std::uint32_t slot, std::uint32_t seq);
  // Makes us the filler of the claim (slot, seq) if it is still Filling and
  // its filler is dead or overdue; *started: our start time in the slot.
  bool take_over_if_stale(std::uint32_t slot, std::uint32_t seq, std::int64_t* started);
  bool matches(std::uint32_t slot, std::uint64_t lo, std::uint64_t hi, std::uint32_t page) const;

  shm::Segment& seg_;
  std::chrono::milliseconds fill_deadline_;
};

}  // namespace objcache::fill
