// SPDX-License-Identifier: Apache-2.0
// The on-disk formats of the SSD spill tier: the block header in the data
// file, the index file's header and the bit layout of an index entry.
// Owns layouts, versions and checksums only; does no I/O.
//
//   <dir>/objcache-<uid>-<name>.data   circular log of 4 KiB-aligned blocks:
//                                      [BlockHeader 160 B][data][unused tail]
//   <dir>/objcache-<uid>-<name>.index  [IndexHeader 4 KiB][slot_count x u64]
//   <dir>/objcache-<uid>-<name>.lock   flock()ed while a process opens the
//                                      pair (create, check, recreate)
//
// Both files are native little-endian (x86-64, arm64); a big-endian host
// would see a magic mismatch and recreate them.
//
// Bump kIndexVersion when IndexHeader, the entry bit layout, the slot
// count rule or the placement of the table changes. Bump kBlockVersion when
// BlockHeader, the alignment or what the checksum covers changes. Either
// mismatch makes the next opener recreate both files (a cold start), never
// misread them.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "util/checksum.h"

namespace objcache::spill {

struct BlockKey;

static_assert(std::endian::native == std::endian::little, "spill files are little-endian");

inline constexpr std::uint64_t kBlockMagic = 0x314b4c4250534f43ull;  // "COSPBLK1"
inline constexpr std::uint64_t kIndexMagic = 0x3158444950534f43ull;  // "COSPIDX1"
inline constexpr std::uint32_t kBlockVersion = 1;
inline constexpr std::uint32_t kIndexVersion = 2;  // 2: the verified marks after the table

// Blocks start on 4 KiB boundaries: the unit of the page cache and of SSD
// pages, so two blocks never share a page and the index can count in units.
// The cost is < 4 KiB of slack per block (< 4% for a 110 KiB JPEG).
inline constexpr std::uint64_t kBlockAlign = 4096;
inline constexpr std::size_t kEtagMax = 64;     // ETag bytes kept per block
inline constexpr std::uint64_t kMaxBlockData = 64ull << 20;  // page_size limit
inline constexpr std::uint64_t kMaxCapacity = 16ull << 40;   // 16 TiB; see entry layout
inline constexpr std::uint32_t kMaxProbe = 64;  // slots one key may live in

// What precedes every block's data. Fields are fixed-width and naturally
// aligned, so the struct has no implicit padding.
struct BlockHeader {
  std::uint64_t magic;           // kBlockMagic
  std::uint32_t version;         // kBlockVersion
  std::uint32_t header_size;     // sizeof(BlockHeader)
  std::uint64_t nonce;           // IndexHeader::nonce of the index it belongs to
  std::uint64_t logical_offset;  // log position it was written at (bytes)
  std::uint64_t id_lo;           // object identity (includes the ETag)
  std::uint64_t id_hi;
  std::uint32_t page;            // page number within the object
  std::uint32_t data_len;        // bytes of data after the header
  std::uint64_t object_offset;   // byte offset of the data within the object
  std::uint16_t etag_len;        // bytes used in etag (ETags longer than 64 are cut)
  std::uint16_t reserved0;
  std::uint32_t reserved1;
  char etag[kEtagMax];           // for verification and debugging
  std::uint8_t reserved2[16];    // zero
  // xxh3-64 over the data, seeded with xxh3-64 of every byte above: one
  // number covers the header fields and the data.
  std::uint64_t checksum;
};
static_assert(sizeof(BlockHeader) == 160);
static_assert(offsetof(BlockHeader, checksum) == 152);
inline constexpr std::size_t kHeaderSize = sizeof(BlockHeader);

// checksum64 is XXH3-64 (util/checksum.h).
inline std::uint64_t block_checksum(const BlockHeader& h, std::span<const std::byte> data) {
  const std::uint64_t seed = checksum64(&h, offsetof(BlockHeader, checksum));
  return checksum64(data.data(), data.size(), seed);
}

// Bytes a block of data_len bytes takes in the log.
inline constexpr std::uint64_t block_alloc_bytes(std::uint64_t data_len) {
  return (kHeaderSize + data_len + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
}

// The index file's first 4 KiB. The geometry fields are written once at
// creation and covered by header_checksum; the atomics after them are the
// shared mutable state.
struct IndexHeader {
  std::uint64_t magic;        // kIndexMagic
  std::uint32_t version;      // kIndexVersion
  std::uint32_t block_version;  // kBlockVersion of the data file
  std::uint64_t capacity;     // bytes of log in the data file, multiple of kBlockAlign
  std::uint64_t page_size;    // largest block data, bytes
  std::uint64_t slot_count;   // power of two
  std::uint32_t block_align;  // kBlockAlign
  std::uint32_t max_probe;    // kMaxProbe
  std::uint64_t nonce;        // random per creation; every block repeats it
  std::uint64_t created_unix;  // seconds, for humans
  std::uint64_t header_checksum;  // xxh3-64 of every byte above
  std::uint8_t pad0[64 - 72 % 64];
  // The log's write cursor: logical bytes ever allocated (never wraps in
  // practice: 2^64 bytes). Physical offset = logical % capacity. A block at
  // logical L is intact while cursor <= L + capacity. seq_cst on the
  // allocating CAS and on the reader's re-check after pread: a writer that
  // will overwrite a block bumps the cursor before it writes, so a reader
  // that still sees the old cursor after its read read intact bytes.
  std::atomic<std::uint64_t> cursor;
  std::uint8_t pad1[64 - 8];
  std::uint8_t reserved[4096 - 192];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8);
static_assert(offsetof(IndexHeader, header_checksum) == 64);
static_assert(offsetof(IndexHeader, cursor) == 128);
static_assert(sizeof(IndexHeader) == 4096);
inline constexpr std::uint64_t kIndexHeaderSize = sizeof(IndexHeader);

inline std::uint64_t index_header_checksum(const IndexHeader& h) {
  return checksum64(&h, offsetof(IndexHeader, header_checksum));
}

// An index entry, one std::atomic<uint64_t> per slot:
//
//   [63 ........ 30][29 ...... 15][14 ..... 0]
//    logical/4 KiB    alloc units    tag
//    mod 2^34         (4 KiB)        15 bits of the key hash
//
// 0 is an empty slot (ends a probe); units == 0 with any other bits is a
// tombstone (a removed entry; probes go on). The offset is kept modulo 2^34
// units (64 TiB of log): with capacity <= 16 TiB a live entry's true offset
// is the unique value within one capacity below the cursor; a 64 TiB-old
// entry that aliases is caught by the block header's logical_offset. The
// tag is a filter: the block header's key is the authority.
namespace entry {
inline constexpr unsigned kTagBits = 15;
inline constexpr unsigned kUnitsBits = 15;
inline constexpr unsigned kOffsetBits = 34;
static_assert(kTagBits + kUnitsBits + kOffsetBits == 64);
inline constexpr std::uint64_t kTagMask = (1ull << kTagBits) - 1;
inline constexpr std::uint64_t kUnitsMask = (1ull << kUnitsBits) - 1;
inline constexpr std::uint64_t kOffsetMask = (1ull << kOffsetBits) - 1;
inline constexpr std::uint64_t kEmpty = 0;
inline constexpr std::uint64_t kTombstone = 1;  // tag 1, units 0
static_assert(block_alloc_bytes(kMaxBlockData) / kBlockAlign <= kUnitsMask);
static_assert(kMaxCapacity / kBlockAlign * 4 <= (1ull << kOffsetBits));

inline constexpr std::uint64_t make(std::uint64_t logical, std::uint64_t alloc_bytes,
                                    std::uint64_t tag) {
  return ((logical / kBlockAlign) & kOffsetMask) << (kTagBits + kUnitsBits) |
         ((alloc_bytes / kBlockAlign) & kUnitsMask) << kTagBits | (tag & kTagMask);
}
inline constexpr std::uint64_t tag(std::uint64_t e) { return e & kTagMask; }
inline constexpr std::uint64_t alloc_bytes(std::uint64_t e) {
  return ((e >> kTagBits) & kUnitsMask) * kBlockAlign;
}
inline constexpr bool is_live(std::uint64_t e) { return alloc_bytes(e) != 0; }
// Bytes from the start of e's block to the cursor, given a cursor loaded
// after e. The entry is fresh (its block intact) while age <= capacity; an
// entry published after the cursor was loaded looks ~64 TiB old: stale.
inline constexpr std::uint64_t age(std::uint64_t e, std::uint64_t cursor) {
  std::uint64_t stored = e >> (kTagBits + kUnitsBits);
  return ((cursor / kBlockAlign - stored) & kOffsetMask) * kBlockAlign;
}
}  // namespace entry

// The hash a key is placed and tagged by (XXH3-64 of id_lo, id_hi, page as
// 20 little-endian bytes): its low bits pick the home slot, its top
// kTagBits are the tag. Part of the index format.
std::uint64_t key_hash(const BlockKey& key);
inline constexpr std::uint64_t key_tag(std::uint64_t hash) { return hash >> (64 - entry::kTagBits); }

}  // namespace objcache::spill
