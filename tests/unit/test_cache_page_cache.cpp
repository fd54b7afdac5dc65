// SPDX-License-Identifier: Apache-2.0
// The page cache as the processes of a node use it: fills once node-wide,
// correct bytes under concurrent reads, fills and evictions (processes and
// threads), a filler killed mid-fill, the spill tier corrupted and
// restarted, eviction "none", verify and pin.
#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cache/page_fills.h"
#include "objcache/page_cache.h"
#include "support/eventually.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace std::chrono_literals;
using objcache::test::TempDir;

namespace {

constexpr std::uint64_t kPage = 1ull << 20;

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The bytes of object obj: a pattern no other object or offset repeats.
void gen(std::uint32_t obj, std::uint64_t offset, std::span<std::byte> dst) {
  for (std::size_t i = 0; i < dst.size(); ++i) {
    std::uint64_t pos = offset + i;
    std::uint64_t w = splitmix((static_cast<std::uint64_t>(obj) << 40) ^ (pos / 8));
    dst[i] = static_cast<std::byte>(w >> (8 * (pos % 8)));
  }
}

struct Obj {
  std::uint32_t num;
  std::uint64_t size;
  ObjectId id;
  std::uint32_t pages() const { return static_cast<std::uint32_t>((size + kPage - 1) / kPage); }
  PageRef page(std::uint32_t p) const {
    return PageRef{id, p, static_cast<std::uint32_t>(std::min<std::uint64_t>(kPage, size - p * kPage)), 0};
  }
};

Obj make_obj(std::uint32_t num, std::uint64_t size) {
  return Obj{num, size, ObjectId::of("bucket", "key/" + std::to_string(num), "etag-1")};
}

CacheConfig cache_cfg(const TempDir& dir, const std::string& spill, Eviction e = Eviction::Clock,
                      std::uint64_t memory = 16ull << 20) {
  CacheConfig c;
  c.name = "pc";
  c.memory = memory;
  c.page_size = kPage;
  c.spill_dir = spill.empty() ? "" : dir.file(spill);
  c.spill_size = 64ull << 20;
  c.eviction = e;
  return c;
}

std::unique_ptr<PageCache> open_cache(const TempDir& dir, const CacheConfig& c) {
  PageCacheOptions o;
  o.shm_dir = dir.path();
  auto pc = PageCache::open(c, o);
  REQUIRE_MESSAGE(pc.ok(), pc.error().describe());
  return std::move(*pc);
}

// Reads [off, off+len) of a page through the cache, filling from gen();
// returns false on any wrong byte. fills counts calls to the filler.
bool read_check(PageCache& pc, const Obj& o, std::uint32_t page, std::uint32_t off, std::uint32_t len,
                std::atomic<int>* fills = nullptr) {
  PageRef ref = o.page(page);
  std::vector<std::byte> out(len), want(len);
  auto r = pc.read(ref, off, out, [&](std::span<std::byte> dst) -> Result<std::size_t> {
    if (fills) ++*fills;
    gen(o.num, static_cast<std::uint64_t>(page) * kPage, dst);
    return dst.size();
  });
  if (!r.ok()) return false;
  std::size_t n = std::min<std::size_t>(len, ref.length > off ? ref.length - off : 0);
  if (r->bytes != n) return false;
  gen(o.num, static_cast<std::uint64_t>(page) * kPage + off, std::span(want).first(n));
  return std::memcmp(out.data(), want.data(), n) == 0;
}

std::vector<Obj> mixed_objects(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Obj> v;
  for (int i = 0; i < n; ++i) {
    std::uint64_t size = (i % 5 == 0) ? 1 + rng() % (3 * kPage) : 1 + rng() % (300 * 1024);
    v.push_back(make_obj(static_cast<std::uint32_t>(i), size));
  }
  return v;
}

// Random reads with content checks; returns the number of wrong reads.
int random_reads(PageCache& pc, const std::vector<Obj>& objs, int reads, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  int bad = 0;
  for (int i = 0; i < reads; ++i) {
    const Obj& o = objs[rng() % objs.size()];
    std::uint32_t p = static_cast<std::uint32_t>(rng() % o.pages());
    std::uint32_t len = o.page(p).length;
    std::uint32_t off = static_cast<std::uint32_t>(rng() % len);
    std::uint32_t n = 1 + static_cast<std::uint32_t>(rng() % (len - off));
    if (!read_check(pc, o, p, off, n)) ++bad;
  }
  return bad;
}

}  // namespace

TEST_CASE("a miss is filled once, then served from RAM") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, ""));
  Obj o = make_obj(1, 110 * 1024);
  std::atomic<int> fills{0};
  CHECK(read_check(*pc, o, 0, 0, 110 * 1024, &fills));
  CHECK(read_check(*pc, o, 0, 1000, 5000, &fills));
  CHECK(read_check(*pc, o, 0, 110 * 1024 - 10, 100, &fills));  // short at the end
  CHECK(fills.load() == 1);
  CHECK(pc->contains(o.id, 0));
  CacheStats s = pc->stats();
  CHECK(s.total.misses == 1);
  CHECK(s.total.ram_hits == 2);
  CHECK(s.total.remote_requests == 1);
  CHECK(s.total.remote_bytes == 110 * 1024);
  CHECK(s.ram_used_bytes >= 110 * 1024);
  CHECK(s.ram_used_bytes < 111 * 1024);
}

TEST_CASE("a fill error is returned and not cached") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, ""));
  Obj o = make_obj(2, 4096);
  std::vector<std::byte> out(4096);
  auto r = pc->read(o.page(0), 0, out, [](std::span<std::byte>) -> Result<std::size_t> {
    return make_error(Status::AccessDenied, "denied");
  });
  CHECK(r.status() == Status::AccessDenied);
  CHECK_FALSE(pc->contains(o.id, 0));
  auto shortfill = pc->read(o.page(0), 0, out, [](std::span<std::byte> d) -> Result<std::size_t> {
    return d.size() - 1;  // a short fill is an error, never a short page
  });
  CHECK_FALSE(shortfill.ok());
  CHECK(pc->stats().total.errors == 2);
  CHECK(read_check(*pc, o, 0, 0, 4096));
}

TEST_CASE("stress: processes read, fill and evict a small shared cache; every byte checks") {
  TempDir dir;
  auto cfg = cache_cfg(dir, "");
  auto objs = mixed_objects(80, 42);  // ~30 MiB of data for 14 MiB of regions
  std::vector<pid_t> kids;
  for (int k = 0; k < 4; ++k) {
    pid_t p = ::fork();
    if (p == 0) {
      PageCacheOptions o;
      o.shm_dir = dir.path();
      auto pc = PageCache::open(cfg, o);
      if (!pc) {
        std::fprintf(stderr, "child %d: %s\n", k, pc.error().describe().c_str());
        ::_exit(100);
      }
      int bad = random_reads(**pc, objs, 1500, 1000 + static_cast<std::uint64_t>(k));
      ::_exit(std::min(bad, 99));
    }
    kids.push_back(p);
  }
  for (pid_t p : kids) {
    int st = 0;
    ::waitpid(p, &st, 0);
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
  }
  auto pc = open_cache(dir, cfg);
  CacheStats s = pc->stats();
  CHECK(s.total.evictions > 0);
  CHECK(s.total.errors == 0);
  CHECK(s.total.ram_hits + s.total.misses == 6000);
  CHECK(s.ram_used_bytes <= s.ram_capacity_bytes);
}

TEST_CASE("stress: threads of one process (the ThreadSanitizer variant)") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, ""));
  auto objs = mixed_objects(60, 7);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] { bad += random_reads(*pc, objs, 800, 77 + static_cast<std::uint64_t>(t)); });
  }
  for (auto& t : ts) t.join();
  CHECK(bad.load() == 0);
  CHECK(pc->stats().total.evictions > 0);
}

TEST_CASE("two processes missing the same 200 objects at once fill each once") {
  TempDir dir;
  auto cfg = cache_cfg(dir, "", Eviction::Clock, 64ull << 20);
  std::vector<Obj> objs;
  for (std::uint32_t i = 0; i < 200; ++i) objs.push_back(make_obj(i, 100 * 1024));
  int go[2];
  REQUIRE(::pipe(go) == 0);
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t p = ::fork();
    if (p == 0) {
      PageCacheOptions o;
      o.shm_dir = dir.path();
      auto pc = PageCache::open(cfg, o);
      char c;
      if (!pc || ::read(go[0], &c, 1) != 1) ::_exit(100);
      int bad = 0;
      for (const Obj& ob : objs) bad += read_check(**pc, ob, 0, 0, 100 * 1024) ? 0 : 1;
      ::_exit(std::min(bad, 99));
    }
    kids.push_back(p);
  }
  REQUIRE(::write(go[1], "gg", 2) == 2);
  for (pid_t p : kids) {
    int st = 0;
    ::waitpid(p, &st, 0);
    CHECK(WEXITSTATUS(st) == 0);
  }
  auto pc = open_cache(dir, cfg);
  CacheStats s = pc->stats();
  CHECK(s.total.remote_requests == 200);
  CHECK(s.total.ram_hits == 200);
}

TEST_CASE("a filler SIGKILLed mid-fill: the others finish with correct bytes") {
  TempDir dir;
  auto cfg = cache_cfg(dir, "");
  Obj o = make_obj(9, 700 * 1024);
  int started[2];
  REQUIRE(::pipe(started) == 0);
  pid_t filler = ::fork();
  if (filler == 0) {
    PageCacheOptions opts;
    opts.shm_dir = dir.path();
    auto pc = PageCache::open(cfg, opts);
    std::vector<std::byte> out(16);
    (void)(*pc)->read(o.page(0), 0, out, [&](std::span<std::byte> dst) -> Result<std::size_t> {
      gen(o.num, 0, dst.first(dst.size() / 2));  // half written...
      std::memset(dst.data() + dst.size() / 2, 0xee, dst.size() / 2);
      (void)!::write(started[1], "s", 1);
      ::pause();  // ...and never finished
      return dst.size();
    });
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(started[0], &c, 1) == 1);
  auto pc = open_cache(dir, cfg);
  // Killed once we wait on its claim, so the take-over path is the one tested.
  std::thread killer([&] {
    CHECK(objcache::test::eventually([&] { return cache::fill_waiters(*pc, o.page(0)) == 1; }));
    ::kill(filler, SIGKILL);
    ::waitpid(filler, nullptr, 0);
  });
  std::atomic<int> fills{0};
  bool ok = read_check(*pc, o, 0, 0, 700 * 1024, &fills);  // waits, then takes over
  killer.join();
  CHECK(ok);
  CHECK(fills.load() == 1);
  CHECK(read_check(*pc, o, 0, 0, 700 * 1024, &fills));
  CHECK(fills.load() == 1);
}

TEST_CASE("spill: evicted pages come back from SSD; corrupted blocks are refetched") {
  TempDir dir;
  auto cfg = cache_cfg(dir, "spill");
  std::vector<Obj> objs;
  for (std::uint32_t i = 0; i < 30; ++i) objs.push_back(make_obj(100 + i, kPage));  // 30 MiB > 14 MiB RAM
  {
    auto pc = open_cache(dir, cfg);
    for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, kPage));
    pc->flush_spill();
    std::atomic<int> fills{0};
    for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, kPage, &fills));
    CacheStats s = pc->stats();
    CHECK(s.total.spill_hits > 0);
    CHECK(fills.load() == 0);  // RAM or spill, never the store
    pc->flush_spill();
  }
  // Flip bytes all over the spill data file.
  std::string data_file;
  DIR* d = ::opendir(dir.file("spill").c_str());
  REQUIRE(d != nullptr);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.substr(n.size() - 5) == ".data") data_file = dir.file("spill") + "/" + n;
  }
  ::closedir(d);
  REQUIRE(!data_file.empty());
  {
    int fd = ::open(data_file.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    struct stat st {};
    ::fstat(fd, &st);
    for (off_t off = 1000; off < st.st_size; off += 64 * 1024) {
      unsigned char b = 0;
      REQUIRE(::pread(fd, &b, 1, off) == 1);
      b ^= 0xff;
      REQUIRE(::pwrite(fd, &b, 1, off) == 1);
    }
    ::close(fd);
  }
  auto pc = open_cache(dir, cfg);
  std::atomic<int> fills{0};
  for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, kPage, &fills));
  CHECK(fills.load() > 0);            // the damaged blocks were fetched again
  CHECK(pc->stats().total.errors > 0);  // and counted
}

TEST_CASE("restart: a new run with the same config is served from spill, no fetches") {
  TempDir dir;
  auto cfg = cache_cfg(dir, "spill");
  std::vector<Obj> objs;
  for (std::uint32_t i = 0; i < 20; ++i) objs.push_back(make_obj(200 + i, 300 * 1024));
  std::string segment;
  {
    auto pc = open_cache(dir, cfg);
    for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, 300 * 1024));
    pc->flush_spill();
    segment = pc->stats().segment_path;
  }
  // A reboot: shared memory is gone, the SSD is not.
  REQUIRE(::unlink(segment.c_str()) == 0);
  auto pc = open_cache(dir, cfg);
  std::atomic<int> fills{0};
  for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, 300 * 1024, &fills));
  CHECK(fills.load() == 0);
  CHECK(pc->stats().total.spill_hits == 20);
  CHECK(pc->stats().total.remote_requests == 0);
}

TEST_CASE("eviction none: data twice the cache keeps about half the reads as hits") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, "", Eviction::None));
  std::vector<Obj> objs;
  for (std::uint32_t i = 0; i < 56; ++i) objs.push_back(make_obj(300 + i, 512 * 1024));  // 28 MiB vs 14 MiB
  std::mt19937_64 rng(5);
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::shuffle(objs.begin(), objs.end(), rng);
    CacheStats before = pc->stats();
    for (const Obj& o : objs) CHECK(read_check(*pc, o, 0, 0, 512 * 1024));
    CacheStats after = pc->stats();
    double hits = static_cast<double>(after.total.ram_hits - before.total.ram_hits) / 56.0;
    CAPTURE(epoch);
    CAPTURE(hits);
    if (epoch > 0) {
      CHECK(hits > 0.35);
      CHECK(hits < 0.65);
    }
  }
  CHECK(pc->stats().total.evictions == 0);
}

TEST_CASE("verify finds a corrupted RAM page, and the next read refetches it") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, ""));
  Obj o = make_obj(400, 64 * 1024);
  REQUIRE(read_check(*pc, o, 0, 0, 64 * 1024));
  VerifyResult clean = pc->verify();
  CHECK(clean.ram_items == 1);
  CHECK(clean.ram_bad == 0);
  // Damage the page inside the segment file.
  std::vector<std::byte> head(64);
  gen(o.num, 0, head);
  std::string path = pc->stats().segment_path;
  int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  struct stat st {};
  ::fstat(fd, &st);
  auto* base = static_cast<std::byte*>(::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ::close(fd);
  REQUIRE(base != MAP_FAILED);
  std::byte* hit = std::search(base, base + st.st_size, head.begin(), head.end());
  REQUIRE(hit != base + st.st_size);
  hit[100] ^= std::byte{0x5a};
  ::munmap(base, static_cast<size_t>(st.st_size));
  VerifyResult v = pc->verify();
  CHECK(v.ram_bad == 1);
  std::atomic<int> fills{0};
  CHECK(read_check(*pc, o, 0, 0, 64 * 1024, &fills));
  CHECK(fills.load() == 1);
}

TEST_CASE("a pinned page survives eviction pressure; unpinned it can go") {
  TempDir dir;
  auto pc = open_cache(dir, cache_cfg(dir, ""));
  Obj keep = make_obj(500, 256 * 1024);
  REQUIRE(read_check(*pc, keep, 0, 0, 1024));
  pc->pin(keep.id, 0);
  for (std::uint32_t i = 0; i < 80; ++i) REQUIRE(read_check(*pc, make_obj(600 + i, 512 * 1024), 0, 0, 16));
  CHECK(pc->contains(keep.id, 0));
  pc->unpin(keep.id, 0);
  for (std::uint32_t i = 0; i < 80; ++i) REQUIRE(read_check(*pc, make_obj(700 + i, 512 * 1024), 0, 0, 16));
  CHECK_FALSE(pc->contains(keep.id, 0));
}
