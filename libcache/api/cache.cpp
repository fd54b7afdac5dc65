// SPDX-License-Identifier: Apache-2.0
// Cache: the library API's entry point. Opens, stats, lists, prefetches
// and creates through the Vfs of the current generation (api/shared.h).
#include "objcache/cache.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <thread>

#include "api/handles.h"
#include "api/shared.h"

namespace objcache {

namespace {

template <typename F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string(what) + ": " + e.what());
  }
}

FileInfo info_of(const std::string& bucket, const Node& n) {
  FileInfo i;
  i.bucket = bucket;
  i.key = n.key;
  i.size = n.size;
  i.mtime = n.mtime;
  i.etag = n.etag;
  i.is_dir = n.is_dir();
  return i;
}

std::string parent_prefix(const std::string& key) {
  const std::size_t slash = key.rfind('/');
  return slash == std::string::npos ? std::string() : key.substr(0, slash + 1);
}

// A directory that holds at least this many of the keys given to
// prefetch is listed (one LIST per 1000 names) rather than HEADed per key.
constexpr std::size_t kListThreshold = 8;
// HEADs of prefetch run this many at once at most.
constexpr std::size_t kStatThreads = 16;

// Runs fn(0 .. n-1) on up to kStatThreads threads (this one among them);
// returns when all are done. A thread that cannot start leaves its share
// to the others.
template <typename F>
void parallel(std::size_t n, F&& fn) {
  std::atomic<std::size_t> next{0};  // relaxed: only hands out indices
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(i);
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < std::min(kStatThreads, n); ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::exception&) {
      break;
    }
  }
  work();
  for (std::thread& th : pool) th.join();
}

}  // namespace

Cache::Cache(std::shared_ptr<api::Shared> shared) : shared_(std::move(shared)) {}
Cache::~Cache() = default;

Result<std::unique_ptr<Cache>> Cache::open(const Config& cfg, const PageCacheOptions& opts) {
  return guarded("cache", [&]() -> Result<std::unique_ptr<Cache>> {
    auto s = api::Shared::create(cfg, opts);
    if (!s) return s.error();
    return std::unique_ptr<Cache>(new Cache(std::move(*s)));
  });
}

Result<std::unique_ptr<Cache>> Cache::open_file(const std::string& toml_path, const PageCacheOptions& opts) {
  auto cfg = load_config(toml_path);
  if (!cfg) return cfg.error();
  return open(*cfg, opts);
}

Result<FileInfo> Cache::stat(std::string_view where) {
  return guarded("stat", [&]() -> Result<FileInfo> {
    auto t = shared_->locate(where);
    if (!t) return t.error();
    auto n = t->gen->vfs->stat(t->where);
    if (!n) return n.error();
    return info_of(t->bucket, *n);
  });
}

Result<File> Cache::open(std::string_view where) {
  return guarded("open", [&]() -> Result<File> {
    auto t = shared_->locate(where);
    if (!t) return t.error();
    auto n = t->gen->vfs->stat(t->where);
    if (!n) return n.error();
    if (n->is_dir()) return make_error(Status::IsDirectory, "is a prefix, not an object: " + std::string(where));
    // A path opens as under the shim (its mount's prefetch starts); a URI's
    // mount only reads ahead of sequential reads.
    if (!t->uri) t->gen->vfs->opened(*n);
    auto impl = std::make_unique<File::Impl>();
    impl->gen = t->gen;
    impl->node = std::move(*n);
    impl->bucket = t->bucket;
    return File(std::move(impl));
  });
}

std::uint64_t Cache::cached_bytes(std::string_view where) {
  try {
    auto t = shared_->locate(where);
    if (!t) return 0;
    auto n = t->gen->vfs->stat(t->where);
    if (!n || n->is_dir()) return 0;
    return t->gen->vfs->cached_bytes(*n);
  } catch (const std::exception&) {
    return 0;
  }
}

Result<Lister> Cache::list(std::string_view prefix) {
  return guarded("list", [&]() -> Result<Lister> {
    auto t = shared_->locate(prefix);
    if (!t) return t.error();
    auto store = t->gen->vfs->store(t->where.mount);
    if (!store) return store.error();
    auto impl = std::make_unique<Lister::Impl>();
    impl->shared = shared_;
    impl->target = *t;
    impl->store = *store;
    impl->prefix = t->where.key;
    // A local path names a directory: its keys, not those that merely
    // begin with its name ("/mnt/d/a" lists a/..., never ab).
    if (!t->uri && !impl->prefix.empty() && !impl->prefix.ends_with('/')) impl->prefix += '/';
    return Lister(std::move(impl));
  });
}

Result<std::size_t> Cache::prefetch(std::span<const std::string> keys) {
  return guarded("prefetch", [&]() -> Result<std::size_t> {
    struct Item {
      api::Target t;
      std::optional<Node> node;
    };
    std::vector<Item> items;
    items.reserve(keys.size());
    for (const std::string& k : keys) {
      auto t = shared_->locate(k);
      if (!t) continue;  // not ours: nothing to fetch
      items.push_back(Item{std::move(*t), std::nullopt});
    }
    // Directories holding many of the keys are listed once, so their
    // files stat from the listing with no request each.
    struct Dir {
      Vfs* vfs = nullptr;
      std::size_t count = 0;
    };
    std::map<std::pair<Vfs*, std::pair<int, std::string>>, Dir> per_dir;
    for (const Item& i : items) {
      Dir& d = per_dir[{i.t.gen->vfs.get(), {i.t.where.mount, parent_prefix(i.t.where.key)}}];
      d.vfs = i.t.gen->vfs.get();  // alive: items hold its generation
      ++d.count;
    }
    std::vector<std::pair<Vfs*, Node>> dirs;
    for (const auto& [where, d] : per_dir) {
      if (d.count < kListThreshold) continue;
      Node dir;
      dir.kind = NodeKind::Directory;
      dir.mount = where.second.first;
      dir.key = where.second.second;
      dirs.emplace_back(d.vfs, std::move(dir));
    }
    // The listings, then the stats, several at once each (a stat that a
    // listing answers costs no request).
    parallel(dirs.size(), [&](std::size_t i) {
      (void)dirs[i].first->list(dirs[i].second);  // a failure leaves the HEADs below
    });
    parallel(items.size(), [&](std::size_t i) {
      auto n = items[i].t.gen->vfs->stat(items[i].t.where);
      if (n && !n->is_dir()) items[i].node = std::move(*n);
    });
    // Queued in the caller's order: the fetcher's queue is first in, first out.
    std::size_t queued = 0;
    for (Item& i : items) {
      if (!i.node) continue;
      if (i.t.gen->vfs->load(*i.node)) ++queued;
    }
    return queued;
  });
}

void Cache::wait_prefetch() {
  try {
    for (const auto& gen : shared_->alive()) gen->vfs->wait_background();
  } catch (const std::exception&) {
  }
}

Result<Writer> Cache::create(std::string_view where) {
  return guarded("create", [&]() -> Result<Writer> {
    auto t = shared_->locate(where);
    if (!t) return t.error();
    Result<std::unique_ptr<StagedFile>> sf =
        t->uri ? t->gen->vfs->create_object(t->where, std::string(where))
               : t->gen->vfs->open_for_write(t->where, O_WRONLY | O_CREAT | O_TRUNC, std::string(where));
    if (!sf) return sf.error();
    auto impl = std::make_unique<Writer::Impl>();
    impl->gen = t->gen;
    impl->fd = (*sf)->take_fd();
    impl->staged = std::move(*sf);
    return Writer(std::move(impl));
  });
}

CacheStats Cache::stats() {
  try {
    return shared_->now()->vfs->cache().stats();
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace objcache
