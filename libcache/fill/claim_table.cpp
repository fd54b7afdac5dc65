// SPDX-License-Identifier: Apache-2.0
#include "fill/claim_table.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <thread>

#include "index/index.h"
#include "util/process.h"

namespace objcache::fill {
namespace {

// The claim word: [seq:8][waiters:16][phase:8]. seq changes with every new
// claim of the slot, so a waiter never mistakes a later claim for its own.
constexpr std::uint32_t phase_of(std::uint32_t w) { return w & 0xff; }
constexpr std::uint32_t waiters_of(std::uint32_t w) { return (w >> 8) & 0xffff; }
constexpr std::uint32_t seq_of(std::uint32_t w) { return w >> 24; }
constexpr std::uint32_t make_word(std::uint32_t seq, std::uint32_t waiters, shm::ClaimPhase p) {
  return (seq << 24) | ((waiters & 0xffff) << 8) | static_cast<std::uint32_t>(p);
}
constexpr std::uint32_t P(shm::ClaimPhase p) { return static_cast<std::uint32_t>(p); }

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, std::chrono::milliseconds timeout) {
  timespec ts{};
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1000000;
  // Shared (not PRIVATE) futex: waiters live in other processes.
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

bool ClaimTable::matches(std::uint32_t slot, std::uint64_t lo, std::uint64_t hi, std::uint32_t page) const {
  const shm::ClaimSlot& c = seg_.claims()[slot];
  return c.id_lo.load(std::memory_order_relaxed) == lo && c.id_hi.load(std::memory_order_relaxed) == hi &&
         c.page.load(std::memory_order_relaxed) == page;
}

Result<Claim> ClaimTable::acquire(std::uint64_t lo, std::uint64_t hi, std::uint32_t page) {
  return claim(lo, hi, page, /*wait=*/true);
}

Result<Claim> ClaimTable::try_acquire(std::uint64_t lo, std::uint64_t hi, std::uint32_t page) {
  return claim(lo, hi, page, /*wait=*/false);
}

Result<Claim> ClaimTable::claim(std::uint64_t lo, std::uint64_t hi, std::uint32_t page, bool wait) {
  shm::ClaimSlot* slots = seg_.claims();
  const std::uint32_t n = seg_.geometry().claim_slots;
  const std::uint32_t start = static_cast<std::uint32_t>(index::page_hash(lo, hi, page) % n);
  pid_t me = proc::self();

  for (int round = 0; round < 1000; ++round) {
    // 1. Someone already on it? Wait for them.
    bool setup_seen = false;
    for (std::uint32_t k = 0; k < kWindow; ++k) {
      std::uint32_t i = (start + k) % n;
      // acquire: the key fields were written before the phase left Setup.
      std::uint32_t w = slots[i].word.load(std::memory_order_acquire);
      if (phase_of(w) == P(shm::ClaimPhase::Setup)) setup_seen = true;
      if (phase_of(w) != P(shm::ClaimPhase::Filling)) continue;
      if (!matches(i, lo, hi, page)) continue;
      if (wait) return wait_for(i, seq_of(w));
      // Not waiting, but a dead (or overdue) filler's claim is taken over
      // here too: else prefetch and cachectl load would skip the page for
      // as long as no demand read happens to wait on it.
      std::int64_t started = 0;
      if (take_over_if_stale(i, seq_of(w), &started)) return Claim{Claim::Kind::Mine, i, started};
      return Claim{Claim::Kind::Busy, i};
    }
    if (setup_seen) {  // a claim is being written; its key may be ours
      std::this_thread::yield();
      continue;
    }
    // 2. Claim the first free slot of the window.
    std::uint32_t mine = n;
    for (std::uint32_t k = 0; k < kWindow && mine == n; ++k) {
      std::uint32_t i = (start + k) % n;
      std::uint32_t w = slots[i].word.load(std::memory_order_relaxed);
      if (phase_of(w) != P(shm::ClaimPhase::Free)) continue;
      std::uint32_t seq = (seq_of(w) + 1) & 0xff;
      if (slots[i].word.compare_exchange_strong(w, make_word(seq, 0, shm::ClaimPhase::Setup),
                                                std::memory_order_acq_rel)) {
        mine = i;
      }
    }
    if (mine == n) return Claim{Claim::Kind::Unclaimed, 0};
    shm::ClaimSlot& c = slots[mine];
    c.id_lo.store(lo, std::memory_order_relaxed);
    c.id_hi.store(hi, std::memory_order_relaxed);
    c.page.store(page, std::memory_order_relaxed);
    c.error.store(0, std::memory_order_relaxed);
    const std::int64_t started = now_ns();
    c.filler_pid.store(me, std::memory_order_relaxed);
    c.started_ns.store(started, std::memory_order_relaxed);
    std::uint32_t w = c.word.load(std::memory_order_relaxed);
    std::uint32_t seq = seq_of(w);
    // release: the key fields above are visible to whoever sees Filling.
    c.word.store(make_word(seq, 0, shm::ClaimPhase::Filling), std::memory_order_release);

    // 3. Two processes may have claimed the same key in different slots at
    // the same moment. The lower slot wins; the other yields and waits.
    bool yield_to_other = false;
    for (std::uint32_t k = 0; k < kWindow; ++k) {
      std::uint32_t i = (start + k) % n;
      if (i == mine) break;  // only slots before ours in the window can win
      std::uint32_t ow = slots[i].word.load(std::memory_order_acquire);
      while (phase_of(ow) == P(shm::ClaimPhase::Setup)) {
        std::this_thread::yield();
        ow = slots[i].word.load(std::memory_order_acquire);
      }
      if (phase_of(ow) == P(shm::ClaimPhase::Filling) && matches(i, lo, hi, page)) {
        yield_to_other = true;
        break;
      }
    }
    if (yield_to_other) {
      // Nobody waits on a claim this young that lost; free it and go round.
      complete(Claim{Claim::Kind::Mine, mine, started}, Status::Ok);
      if (!wait) return Claim{Claim::Kind::Busy, mine};
      continue;
    }
    return Claim{Claim::Kind::Mine, mine, started};
  }
  return Claim{Claim::Kind::Unclaimed, 0};
}

bool ClaimTable::take_over_if_stale(std::uint32_t i, std::uint32_t seq, std::int64_t* started) {
  shm::ClaimSlot& c = seg_.claims()[i];
  pid_t filler = c.filler_pid.load(std::memory_order_relaxed);
  bool overdue = now_ns() - c.started_ns.load(std::memory_order_relaxed) >
                 std::chrono::duration_cast<std::chrono::nanoseconds>(fill_deadline_).count();
  if (proc::alive(filler) && !overdue) return false;
  // The slot stays Filling with its waiters; the pid CAS decides who fills.
  if (!c.filler_pid.compare_exchange_strong(filler, proc::self(), std::memory_order_acq_rel)) return false;
  *started = now_ns();
  c.started_ns.store(*started, std::memory_order_relaxed);
  // acquire: pairs with the release that ended or re-claimed the slot. If
  // the claim ended meanwhile the pid we wrote is stale, and harmless: the
  // next claim of the slot writes its own.
  std::uint32_t w = c.word.load(std::memory_order_acquire);
  return seq_of(w) == seq && phase_of(w) == P(shm::ClaimPhase::Filling);
}

Result<Claim> ClaimTable::wait_for(std::uint32_t i, std::uint32_t seq) {
  shm::ClaimSlot& c = seg_.claims()[i];
  // Register as a waiter, unless the claim ended meanwhile.
  std::uint32_t w = c.word.load(std::memory_order_acquire);
  for (;;) {
    if (seq_of(w) != seq || phase_of(w) == P(shm::ClaimPhase::Free)) return Claim{Claim::Kind::Done, i};
    if (phase_of(w) != P(shm::ClaimPhase::Filling)) break;  // done: read the outcome below
    std::uint32_t nw = make_word(seq, waiters_of(w) + 1, shm::ClaimPhase::Filling);
    if (c.word.compare_exchange_weak(w, nw, std::memory_order_acq_rel)) {
      w = nw;
      break;
    }
  }
  bool registered = phase_of(w) == P(shm::ClaimPhase::Filling);
  // Sleep until done, checking the filler is alive between naps.
  while (phase_of(w) == P(shm::ClaimPhase::Filling) && seq_of(w) == seq) {
    futex_wait(&c.word, w, kPollInterval);
    w = c.word.load(std::memory_order_acquire);
    if (phase_of(w) != P(shm::ClaimPhase::Filling) || seq_of(w) != seq) break;
    std::int64_t started = 0;
    if (take_over_if_stale(i, seq, &started)) {
      if (registered) {  // we fill now; we no longer wait
        std::uint32_t cur = c.word.load(std::memory_order_acquire);
        while (!c.word.compare_exchange_weak(
            cur, make_word(seq_of(cur), waiters_of(cur) - 1, static_cast<shm::ClaimPhase>(phase_of(cur))),
            std::memory_order_acq_rel)) {
        }
      }
      return Claim{Claim::Kind::Mine, i, started};
    }
  }
  // Done (or the slot moved on). Read the outcome, then leave; the last
  // waiter out frees the slot.
  Status outcome = Status::Ok;
  if (seq_of(w) == seq && phase_of(w) == P(shm::ClaimPhase::DoneError)) {
    outcome = static_cast<Status>(c.error.load(std::memory_order_relaxed));
  }
  if (registered) {
    std::uint32_t cur = c.word.load(std::memory_order_acquire);
    for (;;) {
      if (seq_of(cur) != seq) break;  // cannot happen while we are counted; be safe
      std::uint32_t left = waiters_of(cur) - 1;
      bool done = phase_of(cur) == P(shm::ClaimPhase::DoneOk) || phase_of(cur) == P(shm::ClaimPhase::DoneError);
      std::uint32_t nw = (left == 0 && done) ? make_word(seq, 0, shm::ClaimPhase::Free)
                                             : make_word(seq, left, static_cast<shm::ClaimPhase>(phase_of(cur)));
      if (c.word.compare_exchange_weak(cur, nw, std::memory_order_acq_rel)) break;
    }
  }
  if (outcome != Status::Ok) {
    return make_error(outcome, "the process filling this page failed");
  }
  return Claim{Claim::Kind::Done, i};
}

std::uint32_t ClaimTable::waiters(std::uint64_t lo, std::uint64_t hi, std::uint32_t page) const {
  const shm::ClaimSlot* slots = seg_.claims();
  const std::uint32_t n = seg_.geometry().claim_slots;
  const std::uint32_t start = static_cast<std::uint32_t>(index::page_hash(lo, hi, page) % n);
  for (std::uint32_t k = 0; k < kWindow; ++k) {
    std::uint32_t i = (start + k) % n;
    // acquire: as in claim(), the key fields are read after the phase.
    std::uint32_t w = slots[i].word.load(std::memory_order_acquire);
    if (phase_of(w) == P(shm::ClaimPhase::Filling) && matches(i, lo, hi, page)) return waiters_of(w);
  }
  return 0;
}

void ClaimTable::complete(const Claim& claim, Status outcome) {
  if (claim.kind != Claim::Kind::Mine) return;
  shm::ClaimSlot& c = seg_.claims()[claim.slot];
  // Taken over (we overran the deadline, or looked dead): the claim is the
  // taker's to end. relaxed: both fields are written by whoever holds it.
  if (c.filler_pid.load(std::memory_order_relaxed) != proc::self() ||
      c.started_ns.load(std::memory_order_relaxed) != claim.started_ns) {
    return;
  }
  c.error.store(static_cast<std::int32_t>(outcome), std::memory_order_relaxed);
  std::uint32_t w = c.word.load(std::memory_order_acquire);
  for (;;) {
    shm::ClaimPhase done = outcome == Status::Ok ? shm::ClaimPhase::DoneOk : shm::ClaimPhase::DoneError;
    // No waiters: free the slot at once; else the last waiter frees it.
    std::uint32_t nw = waiters_of(w) == 0 ? make_word(seq_of(w), 0, shm::ClaimPhase::Free)
                                          : make_word(seq_of(w), waiters_of(w), done);
    // release: the filled page (and the error) are visible to the waiters.
    if (c.word.compare_exchange_weak(w, nw, std::memory_order_release, std::memory_order_acquire)) break;
  }
  futex_wake_all(&c.word);
}

}  // namespace objcache::fill
