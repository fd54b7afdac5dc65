// SPDX-License-Identifier: Apache-2.0
// The fill protocol across real processes: one filler, waiters that sleep
// on a futex in shared memory, errors that reach the waiters, and a dead
// filler taken over.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "fill/claim_table.h"
#include "support/eventually.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::shm;
using namespace objcache::fill;
using namespace std::chrono_literals;
using objcache::test::eventually;
using objcache::test::TempDir;

namespace {
CacheConfig cfg() {
  CacheConfig c;
  c.name = "claims";
  c.memory = 32ull << 20;
  c.spill_dir = "";
  return c;
}
}  // namespace

TEST_CASE("the first claims, the rest wait and see Done") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  ClaimTable t(**seg, 60s);
  auto a = t.acquire(1, 2, 3);
  REQUIRE(a.ok());
  CHECK(a->kind == Claim::Kind::Mine);

  std::atomic<bool> waiter_done{false};
  std::thread waiter([&] {
    ClaimTable t2(**seg, 60s);
    auto b = t2.acquire(1, 2, 3);
    CHECK(b.ok());
    CHECK(b->kind == Claim::Kind::Done);
    waiter_done = true;
  });
  // The waiter is registered on our claim, asleep on its futex...
  REQUIRE(eventually([&] { return t.waiters(1, 2, 3) == 1; }));
  CHECK_FALSE(waiter_done.load());  // ...and stays there while we fill
  t.complete(*a, Status::Ok);
  waiter.join();
  CHECK(waiter_done.load());

  // Another page is independent; after completion the slot is free again.
  auto c = t.acquire(1, 2, 4);
  REQUIRE(c.ok());
  CHECK(c->kind == Claim::Kind::Mine);
  t.complete(*c, Status::Ok);
  auto d = t.acquire(1, 2, 3);
  REQUIRE(d.ok());
  CHECK(d->kind == Claim::Kind::Mine);
  t.complete(*d, Status::Ok);
}

TEST_CASE("a fill error reaches the waiters in other processes") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  ClaimTable t(**seg, 60s);
  auto a = t.acquire(9, 9, 0);
  REQUIRE(a->kind == Claim::Kind::Mine);
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      ClaimTable tc(**seg, 60s);
      auto r = tc.acquire(9, 9, 0);
      ::_exit(!r.ok() && r.status() == Status::AccessDenied ? 0 : 1);
    }
    kids.push_back(p);
  }
  // All three wait on our claim (else one could claim after we complete
  // and never see the error).
  REQUIRE(eventually([&] { return t.waiters(9, 9, 0) == 3; }));
  t.complete(*a, Status::AccessDenied);
  for (pid_t p : kids) {
    int st = 0;
    ::waitpid(p, &st, 0);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
  }
  // The last waiter out freed the slot.
  auto again = t.acquire(9, 9, 0);
  REQUIRE(again.ok());
  CHECK(again->kind == Claim::Kind::Mine);
  t.complete(*again, Status::Ok);
}

TEST_CASE("a filler killed mid-fill is taken over within a bounded time") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t filler = ::fork();
  if (filler == 0) {
    ClaimTable tc(**seg, 60s);
    auto r = tc.acquire(5, 5, 5);
    char c = r.ok() && r->kind == Claim::Kind::Mine ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();  // "fetching" forever
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  ClaimTable t(**seg, 60s);
  // Killed once we wait on it: the take-over is the waiter's, not a claim
  // made after the filler was already gone.
  std::thread killer([&] {
    CHECK(eventually([&] { return t.waiters(5, 5, 5) == 1; }));
    ::kill(filler, SIGKILL);
    ::waitpid(filler, nullptr, 0);
  });
  auto start = std::chrono::steady_clock::now();
  auto r = t.acquire(5, 5, 5);
  auto took = std::chrono::steady_clock::now() - start;
  killer.join();
  REQUIRE(r.ok());
  CHECK(r->kind == Claim::Kind::Mine);  // we took it over
  CHECK(took < 5s);
  t.complete(*r, Status::Ok);
}

TEST_CASE("a filler past the fill deadline is taken over even if alive") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  ClaimTable slow(**seg, 200ms);
  auto a = slow.acquire(7, 7, 7);
  REQUIRE(a->kind == Claim::Kind::Mine);
  std::thread other([&] {
    ClaimTable t2(**seg, 200ms);
    auto b = t2.acquire(7, 7, 7);
    CHECK(b.ok());
    CHECK(b->kind == Claim::Kind::Mine);
    t2.complete(*b, Status::Ok);
  });
  other.join();
}

TEST_CASE("try_acquire takes over the claim of a dead filler instead of answering Busy") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t filler = ::fork();
  if (filler == 0) {
    ClaimTable tc(**seg, 60s);
    auto r = tc.acquire(6, 6, 6);
    char c = r.ok() && r->kind == Claim::Kind::Mine ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    ::pause();  // killed mid-GET
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  ClaimTable t(**seg, 60s);
  auto live = t.try_acquire(6, 6, 6);
  REQUIRE(live.ok());
  CHECK(live->kind == Claim::Kind::Busy);  // a live filler is left alone
  ::kill(filler, SIGKILL);
  ::waitpid(filler, nullptr, 0);
  auto r = t.try_acquire(6, 6, 6);
  REQUIRE(r.ok());
  CHECK(r->kind == Claim::Kind::Mine);  // the dead filler's claim is ours now
  t.complete(*r, Status::Ok);
  auto again = t.try_acquire(6, 6, 6);
  REQUIRE(again.ok());
  CHECK(again->kind == Claim::Kind::Mine);  // and it was freed
  t.complete(*again, Status::Ok);
}

TEST_CASE("try_acquire takes over a claim held past the fill deadline") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  ClaimTable stuck(**seg, 0ms);  // every claim is overdue at once
  auto a = stuck.acquire(8, 8, 8);
  REQUIRE(a->kind == Claim::Kind::Mine);
  std::thread other([&] {
    ClaimTable t2(**seg, 0ms);
    auto b = t2.try_acquire(8, 8, 8);
    REQUIRE(b.ok());
    CHECK(b->kind == Claim::Kind::Mine);
    t2.complete(*b, Status::Ok);
  });
  other.join();
}

TEST_CASE("a filler taken over for overrunning the deadline ends nothing when it finishes late") {
  TempDir dir;
  auto seg = Segment::open(cfg(), dir.path());
  REQUIRE(seg.ok());
  ClaimTable late(**seg, 0ms);
  auto a = late.acquire(4, 4, 4);
  REQUIRE(a->kind == Claim::Kind::Mine);
  ClaimTable taker(**seg, 0ms);
  auto b = taker.try_acquire(4, 4, 4);
  REQUIRE(b.ok());
  REQUIRE(b->kind == Claim::Kind::Mine);  // overdue at once: taken over
  late.complete(*a, Status::Ok);          // the late filler finishes...
  ClaimTable patient(**seg, 60s);
  auto c = patient.try_acquire(4, 4, 4);
  REQUIRE(c.ok());
  CHECK(c->kind == Claim::Kind::Busy);  // ...and the taker's claim still stands
  taker.complete(*b, Status::Ok);
  auto d = patient.try_acquire(4, 4, 4);
  REQUIRE(d.ok());
  CHECK(d->kind == Claim::Kind::Mine);
  patient.complete(*d, Status::Ok);
}
