// SPDX-License-Identifier: Apache-2.0
// Segment: the shared-memory file of one cache (/dev/shm/objcache-<uid>-<name>).
// The first process builds it under a temporary name (0600, O_EXCL,
// O_NOFOLLOW) and renames it into place only when it is complete, without
// replacing anything; the others attach after checking owner, mode, size,
// magic, version and geometry, and never wait for a creator. Owns the
// mapping and the geometry; knows nothing of what is cached in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "objcache/config.h"
#include "objcache/result.h"
#include "shm/layout.h"

namespace objcache::shm {

// Where each area lives, computed from the configuration alone, so every
// process computes the same geometry and can compare it with the header.
struct Geometry {
  std::uint64_t total_size = 0;
  std::uint64_t page_size = 0;
  std::uint64_t region_size = 0;
  std::uint32_t region_count = 0;
  std::uint32_t claim_slots = 0;
  std::uint32_t index_shards = 0;
  std::uint32_t shard_entries = 0;
  std::uint64_t stats_offset = 0;
  std::uint64_t claims_offset = 0;
  std::uint64_t seen_offset = 0;
  std::uint64_t seen_bits = 0;  // a multiple of 64
  std::uint64_t regions_offset = 0;
  std::uint64_t index_offset = 0;
  std::uint64_t data_offset = 0;

  // Bytes spent on everything but region data (header, stats, claims,
  // region descriptors, index).
  std::uint64_t metadata_bytes() const { return data_offset; }
};

Result<Geometry> plan(const CacheConfig& cfg);

class Segment {
 public:
  // Creates the segment or attaches to the existing one. dir is where the
  // file lives: "" means /dev/shm (tests pass a temp dir).
  static Result<std::unique_ptr<Segment>> open(const CacheConfig& cfg, const std::string& dir = "");
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  const std::string& path() const { return path_; }
  const Geometry& geometry() const { return geo_; }
  bool created() const { return created_; }

  SegmentHeader& header() const { return *reinterpret_cast<SegmentHeader*>(base_); }
  StatSlot* stat_slots() const { return at<StatSlot>(geo_.stats_offset); }
  ClaimSlot* claims() const { return at<ClaimSlot>(geo_.claims_offset); }
  std::atomic<std::uint64_t>* seen_bitmap() const { return at<std::atomic<std::uint64_t>>(geo_.seen_offset); }
  RegionDesc* regions() const { return at<RegionDesc>(geo_.regions_offset); }
  std::atomic<std::uint64_t>* index() const { return at<std::atomic<std::uint64_t>>(geo_.index_offset); }
  std::byte* region_data(std::uint32_t r) const {
    return base_ + geo_.data_offset + static_cast<std::uint64_t>(r) * geo_.region_size;
  }

  // The segment file's path for a cache name in dir ("" = /dev/shm).
  static std::string path_for(const std::string& name, const std::string& dir);

 private:
  Segment() = default;
  // Builds the segment and renames it into place: true, or false when
  // another process's segment got there first (attach to it then).
  Result<bool> create(const CacheConfig& cfg);
  // Maps and checks an existing segment file.
  Result<void> attach(int fd, const CacheConfig& cfg);
  template <typename T>
  T* at(std::uint64_t off) const { return reinterpret_cast<T*>(base_ + off); }

  std::string path_;
  Geometry geo_;
  std::byte* base_ = nullptr;
  std::size_t size_ = 0;
  bool created_ = false;
};

}  // namespace objcache::shm
