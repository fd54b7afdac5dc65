// SPDX-License-Identifier: Apache-2.0
#include "shm/segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <cstring>

#include "util/log.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace objcache::shm {
namespace {

// A process maps the segment afresh and pays one page-table entry per 4 KiB
// it touches (measured here: a fresh process's first pass over warm pages
// takes 1.6x a later one, 0.8x of pread from local disk). On a tmpfs that
// gives 2 MiB pages (huge=within_size or always; huge=advise with this
// call) that cost goes away; elsewhere the call changes nothing and its
// error (no THP in the kernel) is of no consequence.
void ask_huge_pages(void* p, std::size_t len) { (void)::madvise(p, len, MADV_HUGEPAGE); }

constexpr std::uint64_t kMinRegion = 2ull << 20;
// One index entry per 2 KiB of cache: twice the entries needed for 4 KiB
// items, so the table stays at most half full. 8 bytes per 2 KiB = 0.4%.
constexpr std::uint64_t kBytesPerIndexEntry = 2048;
constexpr std::uint32_t kClaimSlots = 1024;

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

namespace {

// The name a creator builds the segment under before it is complete.
std::string temp_path_for(const std::string& path, pid_t pid) {
  return path + ".new-" + std::to_string(pid);
}

// Says so when the file system under a new segment has less room than
// cache.memory: the cache then holds what fits (take_region) instead of
// the program dying of SIGBUS, but the user should know why it is small.
void warn_if_short(const std::string& path, std::uint64_t memory) {
  const std::string dir = path.substr(0, path.rfind('/'));
  struct statvfs sv {};
  if (::statvfs(dir.c_str(), &sv) != 0) return;
  const std::uint64_t room = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
  if (room >= memory) return;
  OC_WARN("%s has %s free but cache.memory is %s: the cache will hold at most what fits (enlarge it, e.g. "
          "docker run --shm-size, or lower cache.memory)",
          dir.c_str(), format_size(room).c_str(), format_size(memory).c_str());
}

// Removes the half-made segments that creators which died left behind
// (their temp name carries their pid).
void remove_dead_creators_files(const std::string& path) {
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string base = path.substr(path.rfind('/') + 1) + ".new-";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (name.substr(0, base.size()) != base) continue;
    const long pid = std::strtol(e->d_name + base.size(), nullptr, 10);
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH)) continue;
    ::unlink((dir + "/" + std::string(name)).c_str());
  }
  ::closedir(d);
}

}  // namespace

Result<std::unique_ptr<Segment>> Segment::open(const CacheConfig& cfg, const std::string& dir) {
  auto geo = plan(cfg);
  if (!geo) return geo.error();
  std::unique_ptr<Segment> seg(new Segment());
  seg->geo_ = *geo;
  seg->path_ = path_for(cfg.name, dir);
  seg->size_ = cfg.memory;
  const std::string& path = seg->path_;

  // A segment appears under its name only once it is complete: its creator
  // builds it under a temporary name and renames it into place without
  // replacing anything. So an attacher finds it whole or not at all, and
  // never waits or guesses.
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      auto attached = seg->attach(fd, cfg);
      ::close(fd);
      if (!attached) return attached.error();
      return seg;
    }
    if (errno != ENOENT) {
      return make_error(errno == EACCES ? Status::AccessDenied : Status::IoError,
                        "cannot open " + path + ": " + errno_text(errno) +
                            (errno == ELOOP ? " (a symbolic link: refusing it)" : ""));
    }
    auto made = seg->create(cfg);
    if (!made) return made.error();
    if (*made) return seg;
    // Another process renamed its segment into place first: attach to it.
  }
  return make_error(Status::IoError, "cannot create or attach " + path);
}

Result<bool> Segment::create(const CacheConfig& cfg) {
  const std::string& path = path_;
  remove_dead_creators_files(path);
  const std::string tmp = temp_path_for(path, ::getpid());
  ::unlink(tmp.c_str());  // ours, from an attempt that failed
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Status::IoError, "cannot create " + tmp + ": " + errno_text(errno));
  auto fail = [&](Status st, const std::string& what, int e) -> Error {
    ::close(fd);
    ::unlink(tmp.c_str());
    return make_error(st, what + ": " + errno_text(e));
  };
  if (::ftruncate(fd, static_cast<off_t>(cfg.memory)) != 0) {
    int e = errno;
    return fail(e == ENOSPC ? Status::NoSpace : Status::IoError, "cannot size " + tmp, e);
  }
  void* p = ::mmap(nullptr, cfg.memory, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return fail(Status::IoError, "cannot map " + tmp, errno);
  base_ = static_cast<std::byte*>(p);
  ask_huge_pages(base_, cfg.memory);
  // Memory behind the header, claims, stats and index before anyone can
  // write there: on a full tmpfs a write to an unbacked page is a SIGBUS in
  // the program. (The data area is backed region by region as it comes
  // into use: RegionTable::take_region.)
  if (::madvise(base_, geo_.data_offset, MADV_POPULATE_WRITE) != 0 && errno != EINVAL) {
    const int e = errno;
    ::munmap(base_, size_);
    base_ = nullptr;
    return fail(Status::NoSpace, "cannot back the " + format_size(geo_.data_offset) + " of metadata of " + tmp +
                                     " (shared memory full; enlarge its file system, e.g. docker run --shm-size, "
                                     "or lower cache.memory)", e == EFAULT ? ENOSPC : e);
  }
  warn_if_short(path, cfg.memory);
  // The file is all zeros: every region Free at generation 0, every claim
  // and stats slot free, the index empty. Only the header needs writing.
  SegmentHeader& h = header();
  const Geometry& g = geo_;
  h.layout_version = kLayoutVersion;
  h.header_size = sizeof(SegmentHeader);
  h.total_size = g.total_size;
  h.page_size = g.page_size;
  h.region_size = g.region_size;
  h.region_count = g.region_count;
  h.claim_slots = g.claim_slots;
  h.index_shards = g.index_shards;
  h.shard_entries = g.shard_entries;
  h.stats_offset = g.stats_offset;
  h.claims_offset = g.claims_offset;
  h.seen_offset = g.seen_offset;
  h.regions_offset = g.regions_offset;
  h.index_offset = g.index_offset;
  h.data_offset = g.data_offset;
  h.creator_pid = ::getpid();
  h.eviction = cfg.eviction == Eviction::None ? 1 : 0;
  h.current_region.store(shm::kNoRegion, std::memory_order_relaxed);
  h.magic.store(kMagic, std::memory_order_release);
  // Into place, never over another creator's segment.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    const int e = errno;
    ::munmap(base_, size_);
    base_ = nullptr;
    if (e == EEXIST) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;  // attach to the one that won
    }
    return fail(Status::IoError, "cannot rename " + tmp + " to " + path, e);
  }
  ::close(fd);
  created_ = true;
  OC_INFO("created cache segment %s (%s, %u regions of %s)", path.c_str(), format_size(cfg.memory).c_str(),
          g.region_count, format_size(g.region_size).c_str());
  return true;
}

Result<void> Segment::attach(int fd, const CacheConfig& cfg) {
  const std::string& path = path_;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return make_error(Status::AccessDenied,
                      path + " is not a private regular file owned by this user; refusing it");
  }
  if (static_cast<std::uint64_t>(st.st_size) != cfg.memory) {
    return make_error(Status::InvalidArgument,
                      path + " has " + format_size(static_cast<std::uint64_t>(st.st_size)) +
                          " but cache.memory is " + format_size(cfg.memory) +
                          "; use another cache.name or remove the file when no process uses it");
  }
  void* p = ::mmap(nullptr, cfg.memory, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return make_error(Status::IoError, "cannot map " + path + ": " + errno_text(errno));
  base_ = static_cast<std::byte*>(p);
  ask_huge_pages(base_, cfg.memory);
  const SegmentHeader& h = header();
  auto refuse = [&](Status s, std::string why) -> Error {
    ::munmap(base_, size_);
    base_ = nullptr;
    return make_error(s, std::move(why));
  };
  if (h.magic.load(std::memory_order_acquire) != kMagic) {
    return refuse(Status::IoError, path + " is not an objcache segment (bad magic); remove it when no process uses it");
  }
  if (h.layout_version != kLayoutVersion) {
    return refuse(Status::Unsupported,
                  path + " has layout version " + std::to_string(h.layout_version) + ", this library uses " +
                      std::to_string(kLayoutVersion) +
                      "; use another cache.name or remove the file when no process uses it");
  }
  const Geometry& g = geo_;
  if (h.page_size != g.page_size || h.region_size != g.region_size || h.region_count != g.region_count ||
      h.data_offset != g.data_offset || h.index_offset != g.index_offset ||
      h.shard_entries != g.shard_entries || h.eviction != (cfg.eviction == Eviction::None ? 1u : 0u)) {
    return refuse(Status::InvalidArgument,
                  path + " was created with page_size " + format_size(h.page_size) + " and eviction " +
                      (h.eviction == 1 ? "none" : "clock") +
                      ", which differ from this configuration; use another cache.name or "
                      "remove the file when no process uses it");
  }
  return {};
}

Segment::~Segment() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

}  // namespace objcache::shm
