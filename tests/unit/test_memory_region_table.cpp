// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "memory/region_table.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::shm;
using objcache::test::TempDir;

namespace {
CacheConfig cfg(Eviction e) {
  CacheConfig c;
  c.name = "regions";
  c.memory = 16ull << 20;  // a few 2 MiB regions
  c.page_size = 1ull << 20;
  c.spill_dir = "";
  c.eviction = e;
  return c;
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<Segment> seg;
  std::unique_ptr<Stats> stats;
  std::unique_ptr<EvictionPolicy> policy;
  std::unique_ptr<RegionTable> table;
  explicit Fixture(Eviction e) {
    auto s = Segment::open(cfg(e), dir.path());
    REQUIRE(s.ok());
    seg = std::move(*s);
    stats = std::make_unique<Stats>(*seg);
    policy = make_eviction_policy(e);
    table = std::make_unique<RegionTable>(*seg, *stats, *policy);
  }
  Reservation put(std::uint32_t len, std::uint8_t fill) {
    auto r = table->reserve(len);
    REQUIRE(r.ok());
    std::memset(r->data.data(), fill, len);
    r->header->id_lo = fill;
    table->publish(*r);
    table->release(*r);
    return *r;
  }
};
}  // namespace

TEST_CASE("items pack on 64-byte boundaries: a 110 KiB object wastes under 15%") {
  Fixture f(Eviction::Clock);
  auto a = f.put(110 * 1024, 1);
  auto b = f.put(110 * 1024, 2);
  CHECK(a.region == b.region);
  std::uint64_t occupied = b.offset - a.offset;
  CHECK(occupied < 110 * 1024 * 115 / 100);
  CHECK(occupied >= 110 * 1024);
  CHECK(occupied % 64 == 0);
}

TEST_CASE("a pinned region is never reclaimed; an unpinned sealed one is") {
  Fixture f(Eviction::Clock);
  auto a = f.put(1 << 20, 1);
  // Fill until a region is sealed.
  for (int i = 0; i < 3; ++i) f.put(1 << 20, 2);
  RegionDesc& d = f.table->desc(a.region);
  REQUIRE(state_phase(d.state.load()) == RegionPhase::Sealed);
  REQUIRE(f.table->pin(a.region, static_cast<std::uint8_t>(a.gen)));
  CHECK_FALSE(f.table->try_reclaim(a.region));
  f.table->unpin(a.region);
  d.pinned.store(1);
  CHECK_FALSE(f.table->try_reclaim(a.region));
  d.pinned.store(0);
  CHECK(f.table->try_reclaim(a.region));
  // The old generation can no longer be pinned.
  CHECK_FALSE(f.table->pin(a.region, static_cast<std::uint8_t>(a.gen)));
}

TEST_CASE("clock eviction reuses space forever; reclaimed items go to the sink") {
  Fixture f(Eviction::Clock);
  std::uint64_t sunk = 0;
  f.table->set_reclaim_sink([&](const ItemHeader& h, std::span<const std::byte> d) {
    CHECK(h.length == d.size());
    CHECK(static_cast<std::uint8_t>(d[0]) == static_cast<std::uint8_t>(h.id_lo));
    ++sunk;
  });
  for (int i = 0; i < 200; ++i) f.put(300 * 1024, static_cast<std::uint8_t>(i));
  CHECK(sunk > 100);
  CHECK(f.table->used_bytes() <= static_cast<std::uint64_t>(f.table->count()) * f.table->region_size());
  CHECK(f.stats->snapshot().total.get(Counter::Evictions) == sunk);
}

TEST_CASE("eviction none admits until full, then refuses") {
  Fixture f(Eviction::None);
  int ok = 0, refused = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = f.table->reserve(512 * 1024);
    if (r.ok()) {
      ++ok;
      f.table->publish(*r);
      f.table->release(*r);
    } else {
      CHECK(r.status() == Status::NoSpace);
      ++refused;
    }
  }
  CHECK(ok > 0);
  CHECK(ok <= static_cast<int>(f.table->count()) * 4);
  CHECK(refused == 100 - ok);
}
