// SPDX-License-Identifier: Apache-2.0
#include "shm/segment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "util/log.h"

namespace objcache::shm {
namespace {

constexpr std::uint64_t kMinRegion = 2ull << 20;
// One index entry per 2 KiB of cache: twice the entries needed for 4 KiB
// items, so the table stays at most half full. 8 bytes per 2 KiB = 0.4%.
constexpr std::uint64_t kBytesPerIndexEntry = 2048;
constexpr std::uint32_t kClaimSlots = 1024;
// How long an attacher waits for a creator to size the file and write its
// header. Generous: under sanitizers on a loaded machine a creator is slow.
constexpr auto kCreatorWait = std::chrono::seconds(10);

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

std::string errno_text(int e) { return std::strerror(e); }

}  // namespace

Result<Geometry> plan(const CacheConfig& cfg) {
  Geometry g;
  g.total_size = cfg.memory;
  g.page_size = cfg.page_size;
  g.region_size = std::max(kMinRegion, cfg.page_size);
  g.claim_slots = kClaimSlots;
  std::uint64_t entries = std::bit_ceil(std::max<std::uint64_t>(4096, cfg.memory / kBytesPerIndexEntry));
  g.index_shards = entries >= 64 * 4096 ? 64 : 1;
  g.shard_entries = static_cast<std::uint32_t>(entries / g.index_shards);

  g.stats_offset = sizeof(SegmentHeader);
  g.claims_offset = align_up(g.stats_offset + sizeof(StatSlot) * kMaxStatSlots, kCacheLine);
  g.seen_offset = align_up(g.claims_offset + sizeof(ClaimSlot) * g.claim_slots, kCacheLine);
  g.seen_bits = std::min(kMaxSeenBits, cfg.memory / 256 * 8);
  g.regions_offset = align_up(g.seen_offset + g.seen_bits / 8, kCacheLine);
  // The descriptors are sized for the most regions that could fit; the
  // data area then takes what is left, in whole regions.
  std::uint64_t max_regions = cfg.memory / g.region_size;
  g.index_offset = align_up(g.regions_offset + sizeof(RegionDesc) * max_regions, kCacheLine);
  g.data_offset = align_up(g.index_offset + entries * sizeof(std::uint64_t), 4096);
  if (g.data_offset + g.region_size * 2 > cfg.memory) {
    return make_error(Status::InvalidArgument,
                      "cache.memory " + format_size(cfg.memory) + " is too small for page_size " +
                          format_size(cfg.page_size) + ": it must hold at least two regions of " +
                          format_size(g.region_size) + " plus " + format_size(g.data_offset) +
                          " of index");
  }
  g.region_count = static_cast<std::uint32_t>((cfg.memory - g.data_offset) / g.region_size);
  return g;
}

std::string Segment::path_for(const std::string& name, const std::string& dir) {
  return (dir.empty() ? std::string("/dev/shm") : dir) + "/objcache-" + std::to_string(::geteuid()) +
         "-" + name;
}

Result<std::unique_ptr<Segment>> Segment::open(const CacheConfig& cfg, const std::string& dir) {
  auto geo = plan(cfg);
  if (!geo) return geo.error();
  std::unique_ptr<Segment> seg(new Segment());
  seg->geo_ = *geo;
  seg->path_ = path_for(cfg.name, dir);
  seg->size_ = cfg.memory;
  const std::string& path = seg->path_;

  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool creating = fd >= 0;
    if (!creating) {
      if (errno != EEXIST) {
        return make_error(Status::IoError, "cannot create " + path + ": " + errno_text(errno));
      }
      fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) continue;  // removed between the two opens
        return make_error(errno == EACCES ? Status::AccessDenied : Status::IoError,
                          "cannot open " + path + ": " + errno_text(errno));
      }
      struct stat st {};
      if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
          (st.st_mode & 077) != 0) {
        ::close(fd);
        return make_error(Status::AccessDenied,
                          path + " is not a private regular file owned by this user; refusing it");
      }
      // A creator sizes the file right after creating it: an empty file is
      // most likely one that is being created now (two processes starting
      // on a new cache at once). Wait for it, as for the header below.
      const auto size_deadline = std::chrono::steady_clock::now() + kCreatorWait;
      bool replaced = false;
      while (st.st_size == 0 && std::chrono::steady_clock::now() < size_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        struct stat now {};
        if (::fstat(fd, &st) != 0) break;
        if (::stat(path.c_str(), &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
          replaced = true;  // removed or made anew meanwhile: open that one
          break;
        }
      }
      if (replaced) {
        ::close(fd);
        continue;
      }
      if (st.st_size == 0 && attempt == 0) {
        // Still empty: its creator died between creating and sizing it.
        ::close(fd);
        OC_WARN("%s stayed empty (its creator died before sizing it); recreating it", path.c_str());
        ::unlink(path.c_str());
        continue;
      }
      if (static_cast<std::uint64_t>(st.st_size) != cfg.memory) {
        ::close(fd);
        return make_error(Status::InvalidArgument,
                          path + " has " + format_size(static_cast<std::uint64_t>(st.st_size)) +
                              " but cache.memory is " + format_size(cfg.memory) +
                              "; use another cache.name or remove the file when no process uses it");
      }
    } else if (::ftruncate(fd, static_cast<off_t>(cfg.memory)) != 0) {
      int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return make_error(e == ENOSPC ? Status::NoSpace : Status::IoError,
                        "cannot size " + path + ": " + errno_text(e));
    }
    void* p = ::mmap(nullptr, cfg.memory, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) {
      if (creating) ::unlink(path.c_str());
      return make_error(Status::IoError, "cannot map " + path + ": " + errno_text(e));
    }
    seg->base_ = static_cast<std::byte*>(p);
    SegmentHeader& h = seg->header();

    if (creating) {
      // The file is all zeros: every region Free at generation 0, every
      // claim and stats slot free, the index empty. Only the header needs
      // writing, and its magic goes last so attachers see it complete.
      h.layout_version = kLayoutVersion;
      h.header_size = sizeof(SegmentHeader);
      h.total_size = geo->total_size;
      h.page_size = geo->page_size;
      h.region_size = geo->region_size;
      h.region_count = geo->region_count;
      h.claim_slots = geo->claim_slots;
      h.index_shards = geo->index_shards;
      h.shard_entries = geo->shard_entries;
      h.stats_offset = geo->stats_offset;
      h.claims_offset = geo->claims_offset;
      h.seen_offset = geo->seen_offset;
      h.regions_offset = geo->regions_offset;
      h.index_offset = geo->index_offset;
      h.data_offset = geo->data_offset;
      h.creator_pid = ::getpid();
      h.eviction = cfg.eviction == Eviction::None ? 1 : 0;
      h.current_region.store(kNoRegion, std::memory_order_relaxed);
      h.magic.store(kMagic, std::memory_order_release);
      seg->created_ = true;
      OC_INFO("created cache segment %s (%s, %u regions of %s)", path.c_str(),
              format_size(cfg.memory).c_str(), geo->region_count, format_size(geo->region_size).c_str());
      return seg;
    }

    // Attaching: wait briefly for a creator that is still writing the header.
    const auto deadline = std::chrono::steady_clock::now() + kCreatorWait;
    while (h.magic.load(std::memory_order_acquire) != kMagic &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (h.magic.load(std::memory_order_acquire) != kMagic) {
      // A creator that died before finishing leaves a file nobody can use.
      bool creator_gone = h.creator_pid == 0 || (::kill(h.creator_pid, 0) != 0 && errno == ESRCH);
      ::munmap(seg->base_, seg->size_);
      seg->base_ = nullptr;
      if (creator_gone && attempt == 0) {
        OC_WARN("%s was never initialized (its creator died); recreating it", path.c_str());
        ::unlink(path.c_str());
        continue;
      }
      return make_error(Status::IoError, path + " is not an objcache segment (bad magic)");
    }
    if (h.layout_version != kLayoutVersion) {
      return make_error(Status::Unsupported,
                        path + " has layout version " + std::to_string(h.layout_version) +
                            ", this library uses " + std::to_string(kLayoutVersion) +
                            "; use another cache.name or remove the file when no process uses it");
    }
    if (h.page_size != geo->page_size || h.region_size != geo->region_size ||
        h.region_count != geo->region_count || h.data_offset != geo->data_offset ||
        h.index_offset != geo->index_offset || h.shard_entries != geo->shard_entries ||
        h.eviction != (cfg.eviction == Eviction::None ? 1u : 0u)) {
      return make_error(Status::InvalidArgument,
                        path + " was created with page_size " + format_size(h.page_size) +
                            " and eviction " + (h.eviction == 1 ? "none" : "clock") +
                            ", which differ from this configuration; use another cache.name or "
                            "remove the file when no process uses it");
    }
    return seg;
  }
  return make_error(Status::IoError, "cannot create or attach " + path);
}

Segment::~Segment() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

}  // namespace objcache::shm
