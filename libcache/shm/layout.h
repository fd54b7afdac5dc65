// SPDX-License-Identifier: Apache-2.0
// The layout of the shared-memory segment every process of a cache maps.
// Offsets, never pointers: each process maps the segment at its own address.
// Owns the bit layouts and the version; knows nothing of S3 or the shim.
//
//   [SegmentHeader 4 KiB][stats slots][claim table][seen bitmap]
//   [region descriptors][index shards][pad to 4 KiB][data: regions]
//
// Bump kLayoutVersion whenever any struct below, a bit layout, or the order
// of the areas changes: a process that sees another version passes through.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace objcache::shm {

inline constexpr std::uint64_t kMagic = 0x3148534548434f4full;  // "OCHESH1" little-endian
inline constexpr std::uint32_t kLayoutVersion = 6;
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::uint32_t kMaxStatSlots = 128;  // processes counted at once
inline constexpr std::uint32_t kMaxMountStats = 16;  // mounts with their own counters
inline constexpr std::size_t kItemAlign = 64;        // items start on cache lines

// Counters each process keeps in its own slot; readers sum the slots.
enum class Counter : std::uint32_t {
  RamHits,
  SpillHits,
  Misses,
  ServedBytes,
  RemoteBytes,
  RemoteRequests,
  PrefetchedBytes,
  Evictions,
  Errors,
  UploadedBytes,   // bytes of objects written to the bucket (parts and PUTs)
  UploadRequests,  // requests of those uploads (create, parts, complete, abort)
  UploadsFailed,   // uploads that failed (their staged files were kept)
  ListRequests,    // LIST requests (listings, directory checks, renames); in RemoteRequests too
  HeadRequests,    // HEAD requests (stat records); in RemoteRequests too
  kCount,
};
inline constexpr std::uint32_t kNumCounters = static_cast<std::uint32_t>(Counter::kCount);

inline constexpr std::uint32_t kPinEntries = 32;  // regions one process pins at once

struct alignas(kCacheLine) StatSlot {
  // The owning pid, 0 when free. CAS (acq_rel) to claim; a dead owner's
  // slot is taken over with its counters kept, so totals never go down.
  std::atomic<std::int32_t> pid;
  // GETs this process holds slots of the fetch gate for (fill::Gate); the
  // process taking over a dead owner's slot gives them back.
  std::atomic<std::uint32_t> gets_in_flight;
  std::uint8_t pad[kCacheLine - 8];
  // Reader pins this process holds, as [region:32][count:32] (0 = unused).
  // The process taking over a dead owner's slot returns its pins to the
  // regions, so a process killed mid-read or mid-fill leaks nothing.
  // acq_rel: a pin is recorded here before the region sees it.
  std::atomic<std::uint64_t> pins[kPinEntries];
  // [0] totals of this process, [1 + m] mount m. Written only by the owner
  // (relaxed: counters, no ordering with anything else).
  std::atomic<std::uint64_t> counters[1 + kMaxMountStats][kNumCounters];
};
static_assert(sizeof(StatSlot) == 2240);

inline constexpr std::uint32_t kNoRegion = 0xffffffffu;

// A fill claim: the one process fetching a page while others wait.
struct alignas(kCacheLine) ClaimSlot {
  // The futex word: [waiters:24][phase:8]. Waiters sleep on it while the
  // phase is Filling. acq_rel on every change: the phase publishes the
  // key fields (written before Filling) and the result (before Done*).
  std::atomic<std::uint32_t> word;
  std::atomic<std::int32_t> filler_pid;  // CAS to take over from a dead filler
  std::atomic<std::uint32_t> page;
  std::atomic<std::int32_t> error;       // a Status when phase is DoneError
  std::atomic<std::uint64_t> id_lo;
  std::atomic<std::uint64_t> id_hi;
  std::atomic<std::int64_t> started_ns;  // CLOCK_MONOTONIC at claim, to bound a fill
  std::uint8_t pad[kCacheLine - 40];
};
static_assert(sizeof(ClaimSlot) == 64);

// The working-set estimate: one bit per page hash (linear counting). A
// data page read for the first time sets its bit and adds its length. The
// bitmap takes cache.memory / 256, at most 1 MiB (Geometry::seen_bits).
inline constexpr std::uint64_t kMaxSeenBits = 1ull << 23;

enum class ClaimPhase : std::uint32_t { Free = 0, Setup = 1, Filling = 2, DoneOk = 3, DoneError = 4 };

// One region of the data area: items appended by one owner, then sealed,
// then reclaimed whole by the eviction policy.
struct alignas(kCacheLine) RegionDesc {
  // [gen:32][phase:8][readers:24]. Readers and writers pin with a CAS that
  // checks gen and phase (acquire: they then see the items published
  // before); the evictor reclaims with a CAS that needs readers == 0 and
  // bumps gen, after which no old index entry can pin the region.
  std::atomic<std::uint64_t> state;
  // Bytes reserved by fetch_add (relaxed: a reservation is owned by its
  // writer; the item is published through the index, not through this).
  std::atomic<std::uint64_t> used;
  std::atomic<std::uint32_t> referenced;  // CLOCK bit, set on hits (relaxed)
  std::atomic<std::uint32_t> pinned;      // items of pinned objects; never reclaimed while > 0
  std::atomic<std::uint32_t> items;       // complete items (relaxed: a statistic)
  std::uint8_t pad[kCacheLine - 28];
};
static_assert(sizeof(RegionDesc) == 64);

enum class RegionPhase : std::uint64_t { Free = 0, Open = 1, Sealed = 2, Reclaiming = 3 };

inline constexpr std::uint64_t region_state(std::uint32_t gen, RegionPhase phase, std::uint32_t readers) {
  return (static_cast<std::uint64_t>(gen) << 32) | (static_cast<std::uint64_t>(phase) << 24) |
         (readers & 0xffffffu);
}
inline constexpr std::uint32_t state_gen(std::uint64_t s) { return static_cast<std::uint32_t>(s >> 32); }
inline constexpr RegionPhase state_phase(std::uint64_t s) { return static_cast<RegionPhase>((s >> 24) & 0xff); }
inline constexpr std::uint32_t state_readers(std::uint64_t s) { return static_cast<std::uint32_t>(s & 0xffffff); }

// The header of every item in a region, followed by `length` bytes of data.
struct ItemHeader {
  std::uint32_t magic;   // kItemMagic once complete
  std::uint32_t length;  // data bytes
  std::uint64_t id_lo;   // object identity (xxh3-128 of bucket, key, ETag)
  std::uint64_t id_hi;
  std::uint32_t page;
  std::uint32_t flags;
  std::uint64_t checksum;       // xxh3-64 of the data, for `cachectl verify`
  std::uint64_t object_offset;  // where the data starts in the object
  // The region generation this item was written in. A header left from an
  // earlier generation is never mistaken for a current item.
  std::uint32_t region_gen;
  std::uint8_t pad[12];
};
static_assert(sizeof(ItemHeader) == 64);
inline constexpr std::uint32_t kItemMagic = 0x4d455449;      // "ITEM": complete, valid
inline constexpr std::uint32_t kReservedMagic = 0x56534552;  // "RESV": being filled, or abandoned
inline constexpr std::uint32_t kTailMagic = 0x4c494154;      // "TAIL": nothing follows in this region

struct SegmentHeader {
  std::atomic<std::uint64_t> magic;  // stored last (release) by the creator
  std::uint32_t layout_version;
  std::uint32_t header_size;
  std::uint64_t total_size;  // == cache.memory
  std::uint64_t page_size;
  std::uint64_t region_size;
  std::uint32_t region_count;
  std::uint32_t claim_slots;
  std::uint32_t index_shards;
  std::uint32_t shard_entries;  // a power of two
  std::uint64_t stats_offset;
  std::uint64_t claims_offset;
  std::uint64_t regions_offset;
  std::uint64_t index_offset;
  std::uint64_t data_offset;
  std::int32_t creator_pid;
  std::uint32_t eviction;  // 0 clock, 1 none
  // The CLOCK hand, an index into the regions (relaxed: any position works).
  std::atomic<std::uint64_t> clock_hand;
  // The region new items are appended to, or kNoRegion. acq_rel: whoever
  // installs a region has reset its descriptor first.
  std::atomic<std::uint32_t> current_region;
  // Regions below this have been populated ahead of use, or are being
  // (memory/prefault.h); relaxed: a hint, never needed for correctness.
  std::atomic<std::uint32_t> populated_regions;
  std::uint64_t seen_offset;  // the seen bitmap (Geometry::seen_bits bits)
  // The fetch gate (fetch/gate.h): GETs in flight node-wide; a futex word
  // bumped on every release; until when (CLOCK_MONOTONIC ns) background
  // prefetch yields because a readahead is waiting for a slot.
  std::atomic<std::uint32_t> gets_in_flight;
  std::atomic<std::uint32_t> gate_seq;
  std::atomic<std::int64_t> readahead_waiting_until;
  // The working set: bits set in the seen bitmap and the bytes they stand for.
  std::atomic<std::uint64_t> seen_pages;
  std::atomic<std::uint64_t> seen_bytes;
  // The gate's adaptive limit for background GETs (fill/gate.h): the limit
  // (0 = not set yet), why and when (unix seconds) it last changed, and the
  // window of GETs it is judged on: samples, throttled attempts, summed
  // latency (us), the most in flight; and the baseline latency (us).
  // relaxed throughout: statistics, never needed for correctness.
  std::atomic<std::uint32_t> fetch_limit;
  std::atomic<std::uint32_t> fetch_limit_reason;
  std::atomic<std::int64_t> fetch_limit_changed;
  std::atomic<std::uint32_t> window_samples;
  std::atomic<std::uint32_t> window_throttled;
  std::atomic<std::uint64_t> window_latency_us;
  std::atomic<std::uint32_t> window_peak;
  std::atomic<std::uint32_t> base_latency_us;
  // The limit the store last throttled at, and windows since: growth
  // stops below it for a while instead of knocking again at once.
  std::atomic<std::uint32_t> throttled_at;
  std::atomic<std::uint32_t> windows_since_throttle;
  std::uint8_t pad[4096 - 208];
};
static_assert(sizeof(SegmentHeader) == 4096);

}  // namespace objcache::shm
