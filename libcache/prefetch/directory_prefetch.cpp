// SPDX-License-Identifier: Apache-2.0
#include "prefetch/directory_prefetch.h"

#include <cstring>
#include <memory>

#include "util/log.h"
#include "util/process.h"

namespace objcache::prefetch {
namespace {

std::string dir_key(int m, const std::string& prefix) { return std::to_string(m) + '\0' + prefix; }

std::string parent_prefix(std::string_view key) {
  auto slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash + 1));
}

// The owner record: the owner's pid and when it took the directory.
constexpr std::uint32_t kOwnerRecordSize = 16;

}  // namespace

DirectoryPrefetch::DirectoryPrefetch(const Config& cfg, PageCache& cache, meta::MetadataCache& meta,
                                     fetch::Fetcher& fetcher)
    : cfg_(cfg), cache_(cache), meta_(meta), fetcher_(fetcher) {}

bool DirectoryPrefetch::own(int m, const std::string& prefix) {
  const PageRef ref{meta_.record_id(m, 'P', prefix), 0, kOwnerRecordSize, PageRef::kMetadata};
  const auto me = static_cast<std::int64_t>(proc::self());
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool filled = false;
    std::byte rec[kOwnerRecordSize];
    auto got = cache_.read(ref, 0, rec, [&](std::span<std::byte> dst) -> Result<std::size_t> {
      const std::int64_t now = meta_.now_ms();
      std::memcpy(dst.data(), &me, 8);
      std::memcpy(dst.data() + 8, &now, 8);
      filled = true;
      return std::size_t{kOwnerRecordSize};
    });
    if (!got || filled) return true;  // ours (or the cache cannot say: go ahead)
    std::int64_t owner = 0;
    std::int64_t made = 0;
    std::memcpy(&owner, rec, 8);
    std::memcpy(&made, rec + 8, 8);
    if (owner == me) return true;
    if (owner > 0 && proc::alive(static_cast<pid_t>(owner)) && meta_.fresh(m, made)) return false;
    cache_.evict_if(ref.id, 0, got->version);  // its owner is gone, or its time is up: take it over
  }
  return true;
}

void DirectoryPrefetch::list_ahead(int m, const std::string& prefix, const Listing& entries) {
  if (mount(m).prefetch != Prefetch::Directory) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (ahead_.size() >= kMaxDirs) ahead_.clear();
    auto [it, fresh] = ahead_.emplace(dir_key(m, prefix), meta_.now_ms());
    if (!fresh && meta_.fresh(m, it->second)) return;
    it->second = meta_.now_ms();
  }
  for (const DirEntry& e : entries) {
    if (e.kind != NodeKind::Directory) continue;
    std::string sub = prefix + e.name + '/';
    bool queued = fetcher_.run_task(m, [this, m, sub] {
      auto l = meta_.listing(m, sub, meta::Fill::Yes);
      if (l) prefetch_listing(m, sub, **l);
    });
    if (!queued) return;
  }
}

void DirectoryPrefetch::prefetch_listing(int m, const std::string& prefix, const Listing& entries) {
  if (mount(m).prefetch != Prefetch::Directory) return;
  const std::string key = dir_key(m, prefix);
  const std::int64_t now = meta_.now_ms();
  {
    std::lock_guard<std::mutex> g(mu_);
    if (dirs_.size() >= kMaxDirs) dirs_.clear();
    DirState& d = dirs_[key];
    // Queued by us within the TTL, or another process's until we look again.
    if (d.queued_ms != 0 && meta_.fresh(m, d.queued_ms)) return;
    if (d.recheck_ms != 0 && now < d.recheck_ms) return;
    d = DirState{now, 0};
  }
  if (!own(m, prefix)) {
    std::lock_guard<std::mutex> g(mu_);
    dirs_[key] = DirState{0, now + kRecheckOwnerMs};
    return;
  }
  const MountConfig& mc = mount(m);
  for (const DirEntry& e : entries) {
    if (e.kind != NodeKind::File || e.etag.empty() || e.size == 0) continue;
    std::string file = prefix + e.name;
    ObjectId id = ObjectId::of(mc.source.bucket, file, e.etag);
    auto t = std::make_shared<const fetch::FetchTarget>(fetch::FetchTarget{m, std::move(file), e.etag, e.size, id});
    if (!fetcher_.enqueue(fill::Priority::Prefetch, t, 0, fetcher_.page_count(*t))) {
      // A full queue: the next open in this directory queues it again.
      std::lock_guard<std::mutex> g(mu_);
      dirs_.erase(key);
      return;
    }
  }
}

void DirectoryPrefetch::listed(int m, const std::string& prefix, const Listing& entries) {
  prefetch_listing(m, prefix, entries);
  list_ahead(m, prefix, entries);
}

void DirectoryPrefetch::opened(const Node& file) {
  if (file.is_dir() || file.mount < 0 || file.size == 0) return;
  switch (mount(file.mount).prefetch) {
    case Prefetch::None:
      return;
    case Prefetch::File: {
      if (file.size <= fetch::kSmallObjectMax) return;  // the first read fetches it whole
      const MountConfig& mc = mount(file.mount);
      auto t = std::make_shared<const fetch::FetchTarget>(fetch::FetchTarget{
          file.mount, file.key, file.etag, file.size, ObjectId::of(mc.source.bucket, file.key, file.etag)});
      fetcher_.enqueue(fill::Priority::Prefetch, t, 1, fetcher_.page_count(*t));
      return;
    }
    case Prefetch::Directory: {
      const std::string parent = parent_prefix(file.key);
      auto l = meta_.listing(file.mount, parent, meta::Fill::Yes);
      if (l) prefetch_listing(file.mount, parent, **l);
      return;
    }
  }
}

}  // namespace objcache::prefetch
