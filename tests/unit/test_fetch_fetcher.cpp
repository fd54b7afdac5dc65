// SPDX-License-Identifier: Apache-2.0
// The fetch gate and the fetcher over an in-memory store (below the S3
// layer): the node-wide cap on GETs in flight, priorities, one GET per page
// however many readers and prefetches want it, small objects in one GET,
// prefetch that never evicts, pages of a killed reader taken over, gate
// slots of a killed process given back, prefetch retried after an outage.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "fetch/fetcher.h"
#include "fill/gate.h"
#include "objcache/page_cache.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::fetch;
using namespace std::chrono_literals;
using objcache::test::TempDir;

namespace {

constexpr std::uint64_t kPage = 1ull << 20;

// Objects in memory; each GET takes `latency` on a thread of its own and
// is counted, with the most GETs ever in flight at once. While down, every
// GET fails as an unreachable store's do (Transient).
class MemStore final : public ObjectStore {
 public:
  explicit MemStore(std::chrono::milliseconds latency) : latency_(latency) {}
  ~MemStore() override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return running_ == 0; });
  }

  void put_bytes(const std::string& key, std::vector<std::byte> data) { objects_[key] = std::move(data); }
  int gets() const { return gets_.load(); }
  int max_in_flight() const { return max_in_flight_.load(); }
  void set_down(bool down) { down_ = down; }
  void reset_max_in_flight() { max_in_flight_ = 0; }
  // Waits until n GETs have been sent (started) / have succeeded, their
  // callbacks run; false after `limit`.
  bool wait_started(int n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return gets_.load() >= n; });
  }
  bool wait_succeeded(int n, std::chrono::milliseconds limit = 20s) {
    std::unique_lock<std::mutex> lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return succeeded_ >= n; });
  }

  Result<ObjectInfo> head(std::string_view) override { return make_error(Status::Unsupported, "head"); }
  Result<GetResult> get(const GetRequest& req, std::span<std::byte> out) override {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Result<GetResult>> got;
    get_async(req, out, [&](Result<GetResult> r) {
      std::lock_guard<std::mutex> g(mu);
      got.emplace(std::move(r));
      cv.notify_all();
    });
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return got.has_value(); });
    return std::move(*got);
  }
  void get_async(const GetRequest& req, std::span<std::byte> out, GetCallback done) override {
    int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      ++running_;
      ++gets_;
      cv_.notify_all();
    }
    std::thread([this, req, out, down = down_.load(), done = std::move(done)] {
      std::this_thread::sleep_for(latency_);  // pace: a store this far away; orders nothing
      if (down) {
        --in_flight_;
        done(make_error(Status::Transient, "connection refused"));
      } else {
        const auto& data = objects_.at(req.key);
        std::uint64_t n = std::min<std::uint64_t>(req.length, data.size() - req.offset);
        std::memcpy(out.data(), data.data() + req.offset, n);
        --in_flight_;
        done(GetResult{n, data.size(), "etag"});
      }
      std::lock_guard<std::mutex> g(mu_);
      if (!down) ++succeeded_;
      --running_;
      cv_.notify_all();
    }).detach();
  }
  Result<ListPage> list(const ListRequest&) override { return make_error(Status::Unsupported, "list"); }
  Result<std::string> put(std::string_view, std::span<const std::byte>) override {
    return make_error(Status::Unsupported, "put");
  }
  Result<std::string> create_multipart(std::string_view) override { return make_error(Status::Unsupported, "mp"); }
  Result<std::string> upload_part(std::string_view, std::string_view, int, std::span<const std::byte>) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<std::string> complete_multipart(std::string_view, std::string_view,
                                         const std::vector<CompletedPart>&) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<void> abort_multipart(std::string_view, std::string_view) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<void> remove(std::string_view) override { return make_error(Status::Unsupported, "rm"); }
  Result<std::string> copy(std::string_view, std::string_view) override {
    return make_error(Status::Unsupported, "copy");
  }

 private:
  std::chrono::milliseconds latency_;
  std::map<std::string, std::vector<std::byte>> objects_;
  std::atomic<int> gets_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  std::atomic<bool> down_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // a GET started or ended
  int running_ = 0;             // threads of GETs, guarded by mu_
  int succeeded_ = 0;           // guarded by mu_
};

std::vector<std::byte> pattern(std::uint64_t size, std::uint32_t seed) {
  std::vector<std::byte> v(size);
  for (std::uint64_t i = 0; i < size; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
  return v;
}

struct Rig {
  TempDir dir;
  std::unique_ptr<PageCache> cache;
  MemStore store;
  std::unique_ptr<Fetcher> fetcher;
  std::map<std::string, std::vector<std::byte>> data;

  explicit Rig(int concurrency, std::uint64_t memory = 64ull << 20, Eviction e = Eviction::Clock,
               std::chrono::milliseconds latency = 20ms)
      : store(latency) {
    CacheConfig c;
    c.name = "fetch";
    c.memory = memory;
    c.page_size = kPage;
    c.spill_dir = "";
    c.eviction = e;
    PageCacheOptions o;
    o.shm_dir = dir.path();
    auto pc = PageCache::open(c, o);
    REQUIRE_MESSAGE(pc.ok(), pc.error().describe());
    cache = std::move(*pc);
    fetcher = std::make_unique<Fetcher>(
        *cache, [this](int) -> Result<ObjectStore*> { return &store; }, nullptr, concurrency);
  }
  ~Rig() { fetcher.reset(); }

  std::shared_ptr<const FetchTarget> add(const std::string& key, std::uint64_t size) {
    data[key] = pattern(size, static_cast<std::uint32_t>(data.size()));
    store.put_bytes(key, data[key]);
    return std::make_shared<const FetchTarget>(FetchTarget{0, key, "etag", size, ObjectId::of("b", key, "etag")});
  }

  // Reads the whole object through the fetcher and compares its bytes.
  bool read_all(const FetchTarget& t) {
    std::vector<std::byte> out(kPage);
    for (std::uint32_t p = 0; p < fetcher->page_count(t); ++p) {
      auto ref = fetcher->page_ref(t, p);
      auto got = fetcher->read_page(t, p, 0, std::span(out).first(ref.length));
      if (!got || got->bytes != ref.length) return false;
      if (std::memcmp(out.data(), data[t.key].data() + p * kPage, ref.length) != 0) return false;
    }
    return true;
  }
};

}  // namespace

TEST_CASE("gate: background GETs stop at the cap, demand reads never wait, prefetch yields to readahead") {
  Rig r(2);
  fill::Gate& g = cache::gate(*r.cache);
  CHECK(g.try_acquire(fill::Priority::Readahead, 2));
  CHECK(g.try_acquire(fill::Priority::Prefetch, 2));
  CHECK_FALSE(g.try_acquire(fill::Priority::Readahead, 2));
  CHECK(g.try_acquire(fill::Priority::Demand, 2));
  CHECK(g.in_flight() == 3);
  // A readahead that waits holds prefetch back even once slots free up.
  CHECK_FALSE(g.acquire(fill::Priority::Readahead, 2, 30ms));
  g.release();
  g.release();
  CHECK(g.in_flight() == 1);
  CHECK_FALSE(g.try_acquire(fill::Priority::Prefetch, 2));  // within the 50 ms hold
  // Once the hold lapses (no readahead waits any more) prefetch goes.
  CHECK(g.acquire(fill::Priority::Prefetch, 2, 10s));
  g.release();
  g.release();
  CHECK(g.in_flight() == 0);
}

TEST_CASE("prefetch: every page once, at most prefetch_concurrency GETs in flight") {
  Rig r(4);
  std::vector<std::shared_ptr<const FetchTarget>> ts;
  for (int i = 0; i < 40; ++i) ts.push_back(r.add("o" + std::to_string(i), 100 << 10));
  for (auto& t : ts) r.fetcher->enqueue(fill::Priority::Prefetch, t, 0, 1);
  r.fetcher->drain();
  CHECK(r.store.gets() == 40);
  CHECK(r.store.max_in_flight() <= 4);
  CHECK(r.store.max_in_flight() >= 2);
  for (auto& t : ts) CHECK(r.cache->contains(t->id, 0));
  CacheStats s = r.cache->stats();
  CHECK(s.total.prefetched_bytes == 40u * (100 << 10));
  CHECK(s.total.remote_requests == 40);
  // Reading them now makes no GET.
  for (auto& t : ts) CHECK(r.read_all(*t));
  CHECK(r.store.gets() == 40);
}

TEST_CASE("demand reads from many threads during a prefetch of the same object: one GET per page") {
  Rig r(8, 64ull << 20, Eviction::Clock, 100ms);
  auto big = r.add("big", 3 * kPage + 123);                  // 4 pages, small: one GET
  auto large = r.add("large", kSmallObjectMax + 3 * kPage);  // 7 pages, ranged GETs
  r.fetcher->enqueue(fill::Priority::Prefetch, large, 0, r.fetcher->page_count(*large));
  REQUIRE(r.store.wait_started(1));  // a GET is in flight (each takes 100 ms)
  std::atomic<int> bad{0};
  std::vector<std::thread> th;
  for (int i = 0; i < 4; ++i) th.emplace_back([&] { bad += !r.read_all(*large); });
  for (auto& t : th) t.join();
  r.fetcher->drain();
  CHECK(bad == 0);
  CHECK(r.store.gets() == static_cast<int>(r.fetcher->page_count(*large)));
  // A small object of 4 pages is one GET, whichever page is read first.
  int before = r.store.gets();
  std::vector<std::byte> out(100);
  auto got = r.fetcher->read_page(*big, 3, 10, out);
  REQUIRE(got.ok());
  CHECK(std::memcmp(out.data(), r.data["big"].data() + 3 * kPage + 10, 100) == 0);
  CHECK(r.store.gets() == before + 1);
  for (std::uint32_t p = 0; p < r.fetcher->page_count(*big); ++p) CHECK(r.cache->contains(big->id, p));
  CHECK(r.read_all(*big));
  CHECK(r.store.gets() == before + 1);
}

TEST_CASE("prefetch fills only free room: it never evicts what is cached") {
  Rig r(4, 24ull << 20, Eviction::Clock, 1ms);
  std::vector<std::shared_ptr<const FetchTarget>> demand;
  for (int i = 0; i < 400; ++i) demand.push_back(r.add("d" + std::to_string(i), 100 << 10));
  for (auto& t : demand) CHECK(r.read_all(*t));  // fills RAM, evicting as reads do
  std::vector<bool> cached;
  for (auto& t : demand) cached.push_back(r.cache->contains(t->id, 0));
  std::vector<std::shared_ptr<const FetchTarget>> more;
  for (int i = 0; i < 100; ++i) more.push_back(r.add("p" + std::to_string(i), 100 << 10));
  for (auto& t : more) r.fetcher->enqueue(fill::Priority::Prefetch, t, 0, 1);
  r.fetcher->drain();
  FetchProgress p = r.fetcher->progress();
  CHECK(p.no_room_pages > 0);
  for (std::size_t i = 0; i < demand.size(); ++i) {
    if (cached[i]) CHECK(r.cache->contains(demand[i]->id, 0));
  }
}

// TSan cannot start threads in the child of a multi-threaded fork.
#if !defined(__SANITIZE_THREAD__)
TEST_CASE("after fork, the child prefetches on its own (the parent's idle dispatcher does not block it)") {
  Rig r(4, 64ull << 20, Eviction::Clock, 1ms);
  auto a = r.add("a", 100 << 10);
  auto b = r.add("b", 100 << 10);
  r.fetcher->enqueue(fill::Priority::Prefetch, a, 0, 1);
  // drain() returns once the dispatcher is idle: it saw the queue empty
  // under the lock it then releases by waiting for work, so it is waiting.
  r.fetcher->drain();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(20);  // a hang fails the test instead of blocking it
    r.fetcher->enqueue(fill::Priority::Prefetch, b, 0, 1);
    r.fetcher->drain();
    ::_exit(r.cache->contains(b->id, 0) ? 0 : 1);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}
#endif

TEST_CASE("prefetch takes over the pages of a reader killed mid-GET") {
  Rig r(4, 64ull << 20, Eviction::Clock, 1ms);
  auto t = r.add("killed", 3 * kPage);  // small object: one GET for all 3 pages
  auto large = r.add("large", kSmallObjectMax + kPage);
  int started[2];
  REQUIRE(::pipe(started) == 0);
  pid_t reader = ::fork();
  if (reader == 0) {
    // Claims page 1 of each (a demand read in flight), then dies in the GET.
    std::vector<std::byte> out(16);
    std::thread second([&] {
      (void)r.cache->read(r.fetcher->page_ref(*large, 1), 0, out, [&](std::span<std::byte>) -> Result<std::size_t> {
        (void)!::write(started[1], "s", 1);
        ::pause();
        return std::size_t{0};
      });
    });
    (void)r.cache->read(r.fetcher->page_ref(*t, 1), 0, out, [&](std::span<std::byte>) -> Result<std::size_t> {
      (void)!::write(started[1], "s", 1);
      ::pause();
      return std::size_t{0};
    });
    ::_exit(0);
  }
  char c[2];
  REQUIRE(::read(started[0], &c[0], 1) == 1);
  REQUIRE(::read(started[0], &c[1], 1) == 1);
  ::kill(reader, SIGKILL);
  ::waitpid(reader, nullptr, 0);
  r.fetcher->enqueue(fill::Priority::Prefetch, t, 0, 3);
  r.fetcher->enqueue(fill::Priority::Readahead, large, 0, r.fetcher->page_count(*large));
  r.fetcher->drain();
  for (std::uint32_t p = 0; p < 3; ++p) CHECK(r.cache->contains(t->id, p));
  for (std::uint32_t p = 0; p < r.fetcher->page_count(*large); ++p) CHECK(r.cache->contains(large->id, p));
  CHECK(r.fetcher->progress().failed_pages == 0);
}

TEST_CASE("gate: the slots of a process killed mid-GET come back at once") {
  Rig r(4);
  fill::Gate& g = cache::gate(*r.cache);
  int held[2];
  REQUIRE(::pipe(held) == 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    bool ok = true;
    for (int i = 0; i < 4; ++i) ok = ok && g.try_acquire(fill::Priority::Prefetch, 4);
    ok = ok && g.try_acquire(fill::Priority::Demand, 4);
    (void)!::write(held[1], ok ? "y" : "n", 1);
    ::pause();  // killed with 5 GETs in flight
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(held[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  CHECK(r.cache->stats().gets_in_flight == 5);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  // Nobody waited on the gate: the next background GET finds it full of
  // the dead process's slots and takes them back at once, and the stats
  // count none of them.
  CHECK(g.try_acquire(fill::Priority::Prefetch, 4));
  g.release();
  CHECK(g.in_flight() == 0);
  CHECK(r.cache->stats().gets_in_flight == 0);

  // And the stats alone give them back too (cachectl stats after a crash).
  pid = ::fork();
  if (pid == 0) {
    bool ok = g.try_acquire(fill::Priority::Demand, 4) && g.try_acquire(fill::Priority::Readahead, 4);
    (void)!::write(held[1], ok ? "y" : "n", 1);
    ::pause();
    ::_exit(0);
  }
  REQUIRE(::read(held[0], &c, 1) == 1);
  REQUIRE(c == 'y');
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  CHECK(r.cache->stats().gets_in_flight == 0);
  CHECK(g.in_flight() == 0);
}

TEST_CASE("prefetch that failed in an outage is sent again once the store answers") {
  Rig r(4, 64ull << 20, Eviction::Clock, 1ms);
  std::vector<std::shared_ptr<const FetchTarget>> ts;
  for (int i = 0; i < 20; ++i) ts.push_back(r.add("o" + std::to_string(i), 100 << 10));
  r.store.set_down(true);
  for (auto& t : ts) r.fetcher->enqueue(fill::Priority::Prefetch, t, 0, 1);
  r.fetcher->drain();
  CHECK(r.fetcher->progress().failed_pages == 20);
  for (auto& t : ts) CHECK_FALSE(r.cache->contains(t->id, 0));
  r.store.reset_max_in_flight();
  r.store.set_down(false);
  // Nobody reads or queues anything: the fetcher's own retries fetch them.
  CHECK(r.store.wait_succeeded(20));
  r.fetcher->drain();
  for (auto& t : ts) CHECK(r.cache->contains(t->id, 0));
  FetchProgress p = r.fetcher->progress();
  CHECK(p.failed_pages == 0);  // fetched after all
  CHECK(p.retry_pages == 0);
  CHECK(r.store.max_in_flight() >= 2);  // sent again together, not one at a time
}
