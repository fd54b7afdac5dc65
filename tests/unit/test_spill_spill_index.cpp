// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "spill/spill_index.h"
#include "spill/spill_store.h"

using namespace objcache;
using namespace objcache::spill;

namespace {

// A formatted index in anonymous shared memory (as a file mapping would be).
std::unique_ptr<SpillIndex> make_index(std::uint64_t capacity, std::uint64_t page_size = 64 << 10) {
  Geometry g{capacity, page_size, SpillIndex::slot_count_for(capacity)};
  const std::size_t len = SpillIndex::file_size(g.slot_count);
  void* map = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  SpillIndex::format(map, g, 0x1234);
  CHECK(SpillIndex::check(*static_cast<IndexHeader*>(map), g, len).empty());
  return std::make_unique<SpillIndex>(map, len);
}

std::vector<IndexSlot> matches(const SpillIndex& idx, std::uint64_t hash) {
  std::vector<IndexSlot> out;
  idx.probe(hash, [&](const IndexSlot& s) {
    out.push_back(s);
    return false;
  });
  return out;
}

}  // namespace

TEST_CASE("entry bit layout round-trips offset, size and tag") {
  const std::uint64_t logical = 123456 * kBlockAlign;
  const std::uint64_t alloc = block_alloc_bytes(110 << 10);
  const std::uint64_t e = entry::make(logical, alloc, 0x5a5a);
  CHECK(entry::is_live(e));
  CHECK(entry::tag(e) == 0x5a5a);
  CHECK(entry::alloc_bytes(e) == alloc);
  const std::uint64_t cursor = logical + alloc + 10 * kBlockAlign;
  CHECK(entry::age(e, cursor) == cursor - logical);
  CHECK_FALSE(entry::is_live(entry::kEmpty));
  CHECK_FALSE(entry::is_live(entry::kTombstone));
  // An entry published after the cursor was loaded looks ancient: stale.
  CHECK(entry::age(e, logical - kBlockAlign) > kMaxCapacity);
  // The largest block fits the units field.
  CHECK(entry::alloc_bytes(entry::make(0, block_alloc_bytes(kMaxBlockData), 1)) ==
        block_alloc_bytes(kMaxBlockData));
}

TEST_CASE("block sizes round up to the 4 KiB unit, header included") {
  CHECK(block_alloc_bytes(0) == 4096);
  CHECK(block_alloc_bytes(1) == 4096);
  CHECK(block_alloc_bytes(4096 - kHeaderSize) == 4096);
  CHECK(block_alloc_bytes(4096 - kHeaderSize + 1) == 8192);
  CHECK(block_alloc_bytes(110 << 10) == 28 * 4096);
}

TEST_CASE("slot count is a power of two scaled to the capacity") {
  CHECK(SpillIndex::slot_count_for(1 << 20) == 1024);
  CHECK(SpillIndex::slot_count_for(64ull << 30) == (2u << 20));
  CHECK(SpillIndex::slot_count_for(3ull << 30) == (128u << 10));
}

TEST_CASE("header check names what differs") {
  Geometry g{1 << 20, 64 << 10, 1024};
  std::vector<std::byte> raw(SpillIndex::file_size(g.slot_count));
  auto* h = reinterpret_cast<IndexHeader*>(raw.data());
  SpillIndex::format(h, g, 7);
  CHECK(SpillIndex::check(*h, g, raw.size()).empty());
  Geometry other = g;
  other.capacity = 2 << 20;
  CHECK(SpillIndex::check(*h, other, raw.size()).find("geometry") != std::string::npos);
  CHECK(SpillIndex::check(*h, g, raw.size() - 8).find("bytes") != std::string::npos);
  h->version = kIndexVersion + 1;
  CHECK(SpillIndex::check(*h, g, raw.size()).find("version") != std::string::npos);
  h->version = kIndexVersion;
  h->capacity ^= 1;  // a flipped bit in the geometry
  CHECK(SpillIndex::check(*h, g, raw.size()).find("checksum") != std::string::npos);
  h->magic = 0;
  CHECK(SpillIndex::check(*h, g, raw.size()).find("magic") != std::string::npos);
}

TEST_CASE("allocation never straddles the end of the log") {
  const std::uint64_t cap = 64 * kBlockAlign;
  auto idx = make_index(cap);
  CHECK(idx->allocate(40 * kBlockAlign) == 0);
  // 24 units remain before the end; 30 do not fit, so the tail is skipped.
  CHECK(idx->allocate(30 * kBlockAlign) == cap);
  CHECK(idx->cursor() == cap + 30 * kBlockAlign);
  CHECK(idx->used_bytes() == cap);
  CHECK_FALSE(idx->intact(0));  // the first block was lapped
  CHECK(idx->intact(cap));
}

TEST_CASE("publish, probe, drop, and staleness as the log laps") {
  const std::uint64_t cap = 256 * kBlockAlign;
  auto idx = make_index(cap);
  const std::uint64_t h1 = 0xabcdef0000000001ull, h2 = 0x1234560000000001ull;  // same home slot
  const std::uint64_t a1 = idx->allocate(kBlockAlign);
  REQUIRE(idx->publish(h1, a1, kBlockAlign, nullptr));
  const std::uint64_t a2 = idx->allocate(2 * kBlockAlign);
  REQUIRE(idx->publish(h2, a2, 2 * kBlockAlign, nullptr));

  auto m1 = matches(*idx, h1);
  REQUIRE(m1.size() == 1);
  CHECK(m1[0].logical == a1);
  CHECK(m1[0].alloc_bytes == kBlockAlign);
  auto m2 = matches(*idx, h2);
  REQUIRE(m2.size() == 1);
  CHECK(m2[0].logical == a2);
  CHECK(m2[0].slot == m1[0].slot + 1);  // linear probing past h1

  // Replacing in place keeps one entry per key.
  const std::uint64_t a3 = idx->allocate(kBlockAlign);
  REQUIRE(idx->publish(h1, a3, kBlockAlign, &m1[0]));
  m1 = matches(*idx, h1);
  REQUIRE(m1.size() == 1);
  CHECK(m1[0].logical == a3);

  // A removed entry is skipped; the probe still reaches h2 behind it.
  CHECK(idx->drop(m1[0]));
  CHECK_FALSE(idx->drop(m1[0]));  // already changed
  CHECK(matches(*idx, h1).empty());
  CHECK(matches(*idx, h2).size() == 1);

  // Once the cursor passes a2 + capacity, h2's entry is stale.
  idx->allocate(cap - 8 * kBlockAlign);
  CHECK(matches(*idx, h2).size() == 1);
  idx->allocate(8 * kBlockAlign);
  CHECK(matches(*idx, h2).empty());

  // A stale slot is reused by the next publish.
  const std::uint64_t a4 = idx->allocate(kBlockAlign);
  REQUIRE(idx->publish(h1, a4, kBlockAlign, nullptr));
  m1 = matches(*idx, h1);
  REQUIRE(m1.size() == 1);
  CHECK(m1[0].slot == (h1 & (idx->slot_count() - 1)));
}

TEST_CASE("a full probe window gives up its oldest entry") {
  const std::uint64_t cap = 16384 * kBlockAlign;
  auto idx = make_index(cap);
  const std::uint64_t mask = idx->slot_count() - 1;
  std::vector<std::uint64_t> hashes;
  for (std::uint64_t i = 0; i <= kMaxProbe; ++i) {
    const std::uint64_t h = (i + 1) << 49 | 5;  // all home at slot 5, distinct tags
    hashes.push_back(h);
    REQUIRE(idx->publish(h, idx->allocate(kBlockAlign), kBlockAlign, nullptr));
  }
  CHECK(matches(*idx, hashes[0]).empty());  // the oldest went
  for (std::size_t i = 1; i < hashes.size(); ++i) {
    auto m = matches(*idx, hashes[i]);
    REQUIRE(m.size() == 1);
    CHECK(idx->in_window(hashes[i], m[0].slot));
  }
  CHECK_FALSE(idx->in_window(hashes[1], (5 + kMaxProbe) & mask));
  std::size_t fresh = 0;
  idx->for_each_fresh([&](const IndexSlot&) { ++fresh; });
  CHECK(fresh == kMaxProbe);
}

TEST_CASE("block and index checksums are plain XXH3-64 (the format depends on it)") {
  BlockHeader h{};
  h.magic = kBlockMagic;
  h.page = 7;
  const std::string data = "some block bytes";
  const auto bytes = std::as_bytes(std::span(data));
  const std::uint64_t seed = XXH3_64bits(&h, offsetof(BlockHeader, checksum));
  CHECK(block_checksum(h, bytes) == XXH3_64bits_withSeed(data.data(), data.size(), seed));
  const BlockKey k{1, 2, 3};
  unsigned char raw[20];
  std::memcpy(raw, &k.id_lo, 8);
  std::memcpy(raw + 8, &k.id_hi, 8);
  std::memcpy(raw + 16, &k.page, 4);
  CHECK(key_hash(k) == XXH3_64bits(raw, sizeof raw));
}
