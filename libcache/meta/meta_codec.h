// SPDX-License-Identifier: Apache-2.0
// The byte formats of the metadata the Vfs keeps in the page cache: a
// directory listing (a blob spread over pages) and a stat record (one small
// page per key). Pure functions, so a damaged or foreign blob is a decode
// error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "objcache/result.h"
#include "objcache/object_store.h"
#include "objcache/metadata.h"

namespace objcache::meta {

// Listing blob: magic, count, then per entry kind, etag length, name
// length, size, mtime, ino, etag, name. Entries in name order.
std::vector<std::byte> encode_listing(const Listing& entries);
Result<Listing> decode_listing(std::span<const std::byte> blob);

// Where a listing blob lives: its length and the nonce naming its pages,
// and when the listing was made (wall clock, ms since the epoch): it is
// fresh for the mount's metadata_ttl from then.
struct ListingRecord {
  std::uint64_t length = 0;
  std::uint64_t nonce = 0;
  std::int64_t made_ms = 0;
};
inline constexpr std::size_t kListingRecordSize = 24;
void encode_listing_record(const ListingRecord& rec, std::span<std::byte> out);
Result<ListingRecord> decode_listing_record(std::span<const std::byte> in);

// A stat record: what HEAD (and, for a missing key, a one-key LIST of
// key + '/') said about a key. kind Missing caches a negative answer.
enum class RecordKind : std::uint8_t { Missing = 0, File = 1, Directory = 2 };
struct StatRecord {
  RecordKind kind = RecordKind::Missing;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::string etag;         // at most kMaxEtag bytes
  std::int64_t made_ms = 0;  // when HEAD answered (wall clock, ms since the epoch)
};
inline constexpr std::size_t kMaxEtag = 200;
inline constexpr std::size_t kStatRecordSize = 256;
Result<void> encode_stat_record(const StatRecord& rec, std::span<std::byte> out);
Result<StatRecord> decode_stat_record(std::span<const std::byte> in);

// Builds a directory's entries from the objects and common prefixes of a
// delimited listing of `prefix`: names relative to it; empty, "." and ".."
// names dropped (they cannot be paths); a name that is both a file and a
// prefix is a directory (the file is shadowed); sorted, unique.
Listing make_listing(int mount, const std::string& prefix, std::vector<ObjectInfo> objects,
                     const std::vector<std::string>& common_prefixes);

}  // namespace objcache::meta
