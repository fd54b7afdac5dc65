// SPDX-License-Identifier: Apache-2.0
// Vfs: stat, list and read over the mounts. Metadata lives in the page cache
// as pages of reserved ids (see metadata_id), so it is shared node-wide,
// filled once node-wide, and expires by epoch: a record's id includes
// floor(now / metadata_ttl), so after the TTL every process asks for a new
// id, the first one revalidates and the old records age out with CLOCK.
#include "objcache/vfs.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <random>

#include <unordered_map>

#include "fetch/fetcher.h"
#include "objcache/object_store.h"
#include "util/checksum.h"
#include "util/log.h"
#include "util/process.h"
#include "meta/meta_codec.h"

namespace objcache {

using fetch::Fetcher;
using fetch::FetchTarget;
using fetch::kSmallObjectMax;

namespace {

// The key of a metadata record: NUL, kind, NUL, key. S3 keys are UTF-8 and
// never start with NUL, so no object's id can be a metadata record's
// (short of an xxh3-128 collision).
std::string metadata_key(char kind, std::string_view key) {
  std::string s;
  s.reserve(key.size() + 4);
  s.push_back('\0');
  s.push_back(kind);
  s.push_back('\0');
  s.append(key);
  return s;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string parent_prefix(std::string_view key) {
  auto slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash + 1));
}

// Every live Vfs, so fork can hold their locks (pthread_atfork).
std::mutex g_live_mu;
std::vector<Vfs::Impl*> g_live;

}  // namespace

struct Vfs::Impl {
  Config cfg;
  MountTable table;
  std::unique_ptr<PageCache> cache;

  std::mutex stores_mu;  // creating stores
  std::vector<std::unique_ptr<ObjectStore>> stores;  // by mount; made on first use

  // This process's decoded listings by (mount, prefix, epoch): within an
  // epoch a listing is fresh, so a hit needs no trip to shared memory.
  std::mutex memo_mu;
  std::map<std::string, std::shared_ptr<const Listing>> memo;
  std::size_t memo_entries = 0;
  static constexpr std::size_t kMemoMaxEntries = 200000;

  // Sequential readahead: per object, the page expected next and the
  // window, which doubles while reads stay sequential.
  struct Sequence {
    std::uint32_t next = 0;
    std::uint32_t window = 0;
    std::uint32_t ahead_until = 0;  // pages below this are queued already
  };
  std::mutex seq_mu;
  std::unordered_map<std::uint64_t, Sequence> sequences;
  static constexpr std::uint64_t kReadaheadMaxBytes = 64ull << 20;
  static constexpr std::size_t kMaxSequences = 4096;

  std::mutex prefetched_mu;
  // Directories this process queued (0), or found another process
  // prefetching (when to look again, ms since the epoch).
  std::map<std::string, std::int64_t> prefetched_dirs;
  static constexpr std::size_t kMaxPrefetchedDirs = 100000;
  static constexpr std::int64_t kRecheckOwnerMs = 1000;

  // Last: destroyed first, while the stores and the cache it uses live.
  std::unique_ptr<Fetcher> fetcher;

  Impl(const Config& c, std::unique_ptr<PageCache> pc)
      : cfg(c), table(c.mounts), cache(std::move(pc)), stores(c.mounts.size()) {
    fetcher = std::make_unique<Fetcher>(
        *cache, [this](int m) { return store(m); },
        [this] {
          std::lock_guard<std::mutex> g(stores_mu);
          for (auto& s : stores) {
            if (s) s->shutdown();
          }
        },
        cfg.store.prefetch_concurrency);
  }

  FetchTarget target(const Node& file) const {
    const MountConfig& mc = mount(file.mount);
    return FetchTarget{file.mount, file.key, file.etag, file.size,
                       ObjectId::of(mc.source.bucket, file.key, file.etag)};
  }

  // After a demand read of page `page` of a large object: queue the pages
  // ahead while the reads are sequential.
  void read_ahead(const Node& file, const FetchTarget& t, std::uint32_t page) {
    if (mount(file.mount).prefetch == Prefetch::None || t.size <= kSmallObjectMax) return;
    const std::uint32_t pages = fetcher->page_count(t);
    const auto max_window = static_cast<std::uint32_t>(
        std::max<std::uint64_t>(2, kReadaheadMaxBytes / cache->page_size()));
    std::uint32_t from = 0;
    std::uint32_t to = 0;
    {
      std::lock_guard<std::mutex> g(seq_mu);
      if (sequences.size() >= kMaxSequences) sequences.clear();
      Sequence& s = sequences[t.id.lo ^ t.id.hi];
      if (page + 1 == s.next) return;  // the same page again
      s.window = (page == s.next && s.window > 0) ? std::min(s.window * 2, max_window) : 2;
      if (page != s.next) s.ahead_until = 0;  // a jump: start over
      s.next = page + 1;
      from = std::max(page + 1, s.ahead_until);
      to = std::min(pages, page + 1 + s.window);
      if (to <= from) return;
      s.ahead_until = to;
    }
    fetcher->enqueue(fill::Priority::Readahead, std::make_shared<const FetchTarget>(t), from, to - from);
  }

  // One process prefetches a directory, node-wide: a metadata record 'P'
  // names it (by pid) for the epoch. Another process takes it over only
  // when that one has exited (a short `ls`, a worker that finished); a
  // DataLoader's workers leave it to the parent that listed it first.
  bool own_directory_prefetch(int m, const std::string& prefix) {
    const PageRef ref{meta_id(m, 'P', prefix, epoch(m)), 0, 8, PageRef::kMetadata};
    const auto me = static_cast<std::int64_t>(proc::self());
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool filled = false;
      std::byte rec[8];
      auto got = cache->read(ref, 0, rec, [&](std::span<std::byte> dst) -> Result<std::size_t> {
        std::memcpy(dst.data(), &me, 8);
        filled = true;
        return std::size_t{8};
      });
      if (!got || filled) return true;  // ours (or the cache cannot say: go ahead)
      std::int64_t owner = 0;
      std::memcpy(&owner, rec, 8);
      if (owner == me) return true;
      if (owner > 0 && proc::alive(static_cast<pid_t>(owner))) return false;
      cache->evict(ref.id, 0);  // its owner is gone: take it over
    }
    return true;
  }

  // A walk (os.walk, ImageFolder's scan) lists the subdirectories next, one
  // after another: list them now, in parallel, on the fetcher's task
  // threads, so each of those LISTs is done or in flight when asked for,
  // and queue their files for prefetch as each listing arrives.
  void list_ahead(int m, const std::string& prefix, const Listing& entries) {
    if (mount(m).prefetch != Prefetch::Directory) return;
    const std::string tag = "L" + std::to_string(m) + '\0' + prefix + '\0' + epoch(m);
    {
      std::lock_guard<std::mutex> g(prefetched_mu);
      if (prefetched_dirs.size() >= kMaxPrefetchedDirs) prefetched_dirs.clear();
      if (!prefetched_dirs.emplace(tag, 0).second) return;
    }
    for (const DirEntry& e : entries) {
      if (e.kind != NodeKind::Directory) continue;
      std::string sub = prefix + e.name + '/';
      bool queued = fetcher->run_task(m, [this, m, sub] {
        auto l = listing(m, sub, /*fill=*/true);
        if (l) prefetch_listing(m, sub, **l);
      });
      if (!queued) return;
    }
  }

  // Queues the files of a listed directory for background prefetch, once
  // per process and metadata epoch. A full queue stops it; the directory
  // is then queued again by the next open in it.
  void prefetch_listing(int m, const std::string& prefix, const Listing& entries) {
    if (mount(m).prefetch != Prefetch::Directory) return;
    const std::string tag = std::to_string(m) + '\0' + prefix + '\0' + epoch(m);
    const std::int64_t now = now_ms();
    {
      std::lock_guard<std::mutex> g(prefetched_mu);
      if (prefetched_dirs.size() >= kMaxPrefetchedDirs) prefetched_dirs.clear();
      auto [it, fresh] = prefetched_dirs.emplace(tag, 0);
      // Queued by us (0), or another process's until we look again.
      if (!fresh && (it->second == 0 || now < it->second)) return;
      it->second = 0;
    }
    if (!own_directory_prefetch(m, prefix)) {
      std::lock_guard<std::mutex> g(prefetched_mu);
      prefetched_dirs[tag] = now + kRecheckOwnerMs;
      return;
    }
    const MountConfig& mc = mount(m);
    for (const DirEntry& e : entries) {
      if (e.kind != NodeKind::File || e.etag.empty() || e.size == 0) continue;
      std::string key = prefix + e.name;
      ObjectId id = ObjectId::of(mc.source.bucket, key, e.etag);
      auto t = std::make_shared<const FetchTarget>(FetchTarget{m, std::move(key), e.etag, e.size, id});
      if (!fetcher->enqueue(fill::Priority::Prefetch, t, 0, fetcher->page_count(*t))) {
        std::lock_guard<std::mutex> g(prefetched_mu);
        prefetched_dirs.erase(tag);
        return;
      }
    }
  }


  const MountConfig& mount(int m) const { return cfg.mounts[static_cast<std::size_t>(m)]; }

  std::string epoch(int m) const {
    auto ttl = mount(m).metadata_ttl.count();
    if (ttl <= 0) return "e0";
    return "e" + std::to_string(now_ms() / ttl);
  }

  Result<ObjectStore*> store(int m) {
    std::lock_guard<std::mutex> g(stores_mu);
    auto& s = stores[static_cast<std::size_t>(m)];
    if (!s) {
      auto made = create_s3_store(mount(m).store, mount(m).source.bucket);
      if (!made) return made.error();
      s = std::move(*made);
    }
    return s.get();
  }

  ObjectId meta_id(int m, char kind, std::string_view key, std::string_view version) const {
    return ObjectId::of(mount(m).source.bucket, metadata_key(kind, key), version);
  }

  // ---- listings -------------------------------------------------------------

  std::shared_ptr<const Listing> memo_get(const std::string& k) {
    std::lock_guard<std::mutex> g(memo_mu);
    auto it = memo.find(k);
    return it == memo.end() ? nullptr : it->second;
  }

  void memo_put(const std::string& k, std::shared_ptr<const Listing> l) {
    std::lock_guard<std::mutex> g(memo_mu);
    if (memo_entries + l->size() > kMemoMaxEntries) {
      memo.clear();
      memo_entries = 0;
    }
    memo_entries += l->size();
    memo[k] = std::move(l);
  }

  Result<Listing> fetch_listing(int m, const std::string& prefix) {
    auto st = store(m);
    if (!st) return st.error();
    std::vector<ObjectInfo> objects;
    std::vector<std::string> prefixes;
    ListRequest req;
    req.prefix = prefix;
    req.delimiter = "/";
    for (;;) {
      auto page = (*st)->list(req);
      cache->count_remote(0, PageRef::kMetadata);
      if (!page) return page.error();
      for (auto& o : page->objects) objects.push_back(std::move(o));
      for (auto& p : page->common_prefixes) prefixes.push_back(std::move(p));
      if (!page->truncated || page->next_continuation_token.empty()) break;
      req.continuation_token = page->next_continuation_token;
    }
    return meta::make_listing(m, prefix, std::move(objects), prefixes);
  }

  // The listing of prefix from shared memory, filling it (one LIST node-wide)
  // if fill is set; NotFound if it is not cached and fill is not set.
  Result<std::shared_ptr<const Listing>> listing(int m, const std::string& prefix, bool fill) {
    const std::string version = epoch(m);
    const std::string memo_key = std::to_string(m) + '\0' + prefix + '\0' + version;
    if (auto hit = memo_get(memo_key)) return hit;

    const ObjectId rec_id = meta_id(m, 'R', prefix, version);
    const std::uint64_t ps = cache->page_size();
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::byte rec_bytes[meta::kListingRecordSize];
      PageRef rec_ref{rec_id, 0, meta::kListingRecordSize, PageRef::kMetadata};
      std::shared_ptr<const Listing> built;  // set when this process did the LIST
      Result<PageRead> got = make_error(Status::NotFound, "listing not cached");
      if (fill) {
        got = cache->read(rec_ref, 0, rec_bytes, [&](std::span<std::byte> dst) -> Result<std::size_t> {
          auto l = fetch_listing(m, prefix);
          if (!l) return l.error();
          auto shared = std::make_shared<const Listing>(std::move(*l));
          std::vector<std::byte> blob = meta::encode_listing(*shared);
          meta::ListingRecord rec{blob.size(), std::random_device{}() | 1ull | (static_cast<std::uint64_t>(::getpid()) << 32)};
          const ObjectId blob_id = meta_id(m, 'L', prefix, version + ':' + std::to_string(rec.nonce));
          // The blob's pages go in before the record that names them.
          for (std::uint64_t off = 0, page = 0; off < blob.size(); off += ps, ++page) {
            auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, blob.size() - off));
            std::byte one[1];
            (void)cache->read(PageRef{blob_id, static_cast<std::uint32_t>(page), len, PageRef::kMetadata}, 0, one,
                              [&](std::span<std::byte> d) -> Result<std::size_t> {
                                std::memcpy(d.data(), blob.data() + off, len);
                                return std::size_t{len};
                              });
          }
          meta::encode_listing_record(rec, dst);
          built = shared;
          return dst.size();
        });
      } else {
        got = cache->lookup(rec_ref, 0, rec_bytes);
      }
      if (!got) return got.error();
      if (built) {
        memo_put(memo_key, built);
        return built;
      }
      auto rec = meta::decode_listing_record(rec_bytes);
      if (!rec) {
        cache->evict(rec_id, 0);
        continue;
      }
      auto blob = read_blob(m, prefix, version, *rec);
      if (!blob) {
        // The blob's pages were evicted (or are damaged): forget the record
        // and list again.
        cache->evict(rec_id, 0);
        if (!fill) return make_error(Status::NotFound, "listing evicted");
        continue;
      }
      auto shared = std::make_shared<const Listing>(std::move(*blob));
      memo_put(memo_key, shared);
      return shared;
    }
    // The cache cannot hold it (full with eviction "none"): list directly.
    auto l = fetch_listing(m, prefix);
    if (!l) return l.error();
    auto shared = std::make_shared<const Listing>(std::move(*l));
    memo_put(memo_key, shared);
    return shared;
  }

  Result<Listing> read_blob(int m, const std::string& prefix, const std::string& version,
                            const meta::ListingRecord& rec) {
    const ObjectId blob_id = meta_id(m, 'L', prefix, version + ':' + std::to_string(rec.nonce));
    const std::uint64_t ps = cache->page_size();
    std::vector<std::byte> blob(rec.length);
    for (std::uint64_t off = 0, page = 0; off < rec.length; off += ps, ++page) {
      auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, rec.length - off));
      auto got = cache->read(PageRef{blob_id, static_cast<std::uint32_t>(page), len, PageRef::kMetadata}, 0,
                             std::span(blob).subspan(off, len),
                             [](std::span<std::byte>) -> Result<std::size_t> {
                               return make_error(Status::NotFound, "listing page evicted");
                             });
      if (!got) return got.error();
      if (got->bytes != len) return make_error(Status::IoError, "listing page short");
    }
    return meta::decode_listing(blob);
  }

  // ---- stat records ----------------------------------------------------------

  Result<meta::StatRecord> head_record(int m, const std::string& key) {
    const std::string version = epoch(m);
    std::byte bytes[meta::kStatRecordSize];
    PageRef ref{meta_id(m, 'S', key, version), 0, meta::kStatRecordSize, PageRef::kMetadata};
    auto got = cache->read(ref, 0, bytes, [&](std::span<std::byte> dst) -> Result<std::size_t> {
      auto st = store(m);
      if (!st) return st.error();
      meta::StatRecord rec;
      auto info = (*st)->head(key);
      cache->count_remote(0, PageRef::kMetadata);
      if (info) {
        rec.kind = meta::RecordKind::File;
        rec.size = info->size;
        rec.mtime = info->mtime;
        rec.etag = info->etag;
        if (rec.etag.size() > meta::kMaxEtag) return make_error(Status::Unsupported, "ETag too long");
      } else if (info.status() == Status::NotFound) {
        // No object: a directory if any key lies below key + '/'.
        ListRequest req;
        req.prefix = key + '/';
        req.delimiter = "/";
        req.max_keys = 1;
        auto page = (*st)->list(req);
        cache->count_remote(0, PageRef::kMetadata);
        if (!page) return page.error();
        bool any = !page->objects.empty() || !page->common_prefixes.empty();
        rec.kind = any ? meta::RecordKind::Directory : meta::RecordKind::Missing;
      } else {
        return info.error();
      }
      auto enc = meta::encode_stat_record(rec, dst);
      if (!enc) return enc.error();
      return dst.size();
    });
    if (!got) return got.error();
    auto rec = meta::decode_stat_record(bytes);
    if (!rec) cache->evict(ref.id, 0);
    return rec;
  }

  Node dir_node(int m, std::string prefix) const {
    Node n;
    n.kind = NodeKind::Directory;
    n.mount = m;
    n.ino = ino_of(m, prefix);
    n.dev = dev_of(m);
    n.key = std::move(prefix);
    return n;
  }
};

// ---- fork: hold every Vfs lock across it, so the child finds them free -----

namespace {

void before_fork() {
  g_live_mu.lock();
  for (Vfs::Impl* v : g_live) {
    v->stores_mu.lock();
    v->memo_mu.lock();
    v->seq_mu.lock();
    v->prefetched_mu.lock();
    v->fetcher->lock_for_fork();
  }
}

void after_fork() {
  for (Vfs::Impl* v : g_live) {
    v->fetcher->unlock_after_fork();
    v->prefetched_mu.unlock();
    v->seq_mu.unlock();
    v->memo_mu.unlock();
    v->stores_mu.unlock();
  }
  g_live_mu.unlock();
}

}  // namespace

Result<std::unique_ptr<Vfs>> Vfs::open(const Config& cfg, const PageCacheOptions& opts) {
  try {
    auto pc = PageCache::open(cfg.cache, opts);
    if (!pc) return pc.error();
    auto impl = std::make_unique<Impl>(cfg, std::move(*pc));
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(before_fork, after_fork, after_fork); });
    {
      std::lock_guard<std::mutex> g(g_live_mu);
      g_live.push_back(impl.get());
    }
    return std::unique_ptr<Vfs>(new Vfs(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("vfs: ") + e.what());
  }
}

Vfs::Vfs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Vfs::~Vfs() {
  std::lock_guard<std::mutex> g(g_live_mu);
  std::erase(g_live, impl_.get());
}

const MountTable& Vfs::mounts() const { return impl_->table; }
PageCache& Vfs::cache() { return *impl_->cache; }

std::uint64_t Vfs::ino_of(int mount, std::string_view key) {
  std::uint64_t h = checksum64(key.data(), key.size(), static_cast<std::uint64_t>(mount) + 0x6f6263);
  h &= (1ull << 62) - 1;  // positive in every signed view
  return h == 0 ? 1 : h;
}

std::uint64_t Vfs::dev_of(int mount) {
  // An unnamed-device style number (major 0), distinct per mount.
  return 0x0bc00000ull + static_cast<std::uint64_t>(mount);
}

Result<Node> Vfs::stat(const Resolved& where) {
  try {
    Impl& v = *impl_;
    if (!where.ours() || where.mount >= static_cast<int>(v.cfg.mounts.size())) {
      return make_error(Status::InvalidArgument, "not under a mount");
    }
    const int m = where.mount;
    if (where.is_root) return v.dir_node(m, where.key);
    std::string key = where.key;
    while (!key.empty() && key.back() == '/') key.pop_back();
    const std::string parent = parent_prefix(key);
    const std::string name = key.substr(parent.size());

    // A listing of the parent already in the cache answers, positive or
    // negative, with no request.
    auto l = v.listing(m, parent, /*fill=*/false);
    if (l) {
      const Listing& entries = **l;
      auto it = std::lower_bound(entries.begin(), entries.end(), name,
                                 [](const DirEntry& e, const std::string& n) { return e.name < n; });
      if (it == entries.end() || it->name != name) {
        return make_error(Status::NotFound, "no such key: " + key);
      }
      if (it->kind == NodeKind::Directory) return v.dir_node(m, key + '/');
      if (!it->etag.empty()) {
        Node n;
        n.kind = NodeKind::File;
        n.mount = m;
        n.key = key;
        n.size = it->size;
        n.mtime = it->mtime;
        n.etag = it->etag;
        n.ino = it->ino;
        n.dev = dev_of(m);
        return n;
      }
    }
    auto rec = v.head_record(m, key);
    if (!rec) return rec.error();
    switch (rec->kind) {
      case meta::RecordKind::Missing:
        return make_error(Status::NotFound, "no such key: " + key);
      case meta::RecordKind::Directory:
        return v.dir_node(m, key + '/');
      case meta::RecordKind::File:
        break;
    }
    Node n;
    n.kind = NodeKind::File;
    n.mount = m;
    n.size = rec->size;
    n.mtime = rec->mtime;
    n.etag = std::move(rec->etag);
    n.ino = ino_of(m, key);
    n.dev = dev_of(m);
    n.key = std::move(key);
    return n;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("stat: ") + e.what());
  }
}

Result<std::shared_ptr<const Listing>> Vfs::list(const Node& dir) {
  try {
    if (!dir.is_dir()) return make_error(Status::InvalidArgument, "not a directory: " + dir.key);
    auto l = impl_->listing(dir.mount, dir.key, /*fill=*/true);
    if (l) {
      impl_->prefetch_listing(dir.mount, dir.key, **l);
      impl_->list_ahead(dir.mount, dir.key, **l);
    }
    return l;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("list: ") + e.what());
  }
}

Result<std::size_t> Vfs::read(const Node& file, std::uint64_t offset, std::span<std::byte> out) {
  try {
    Impl& v = *impl_;
    if (file.is_dir()) return make_error(Status::InvalidArgument, "is a directory: " + file.key);
    if (offset >= file.size || out.empty()) return std::size_t{0};
    const std::uint64_t ps = v.cache->page_size();
    const FetchTarget t = v.target(file);
    const std::uint64_t end = std::min<std::uint64_t>(file.size, offset + out.size());
    std::size_t done = 0;
    for (std::uint64_t pos = offset; pos < end;) {
      const auto page = static_cast<std::uint32_t>(pos / ps);
      const auto in_page = static_cast<std::uint32_t>(pos - static_cast<std::uint64_t>(page) * ps);
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(end - pos, ps - in_page));
      auto got = v.fetcher->read_page(t, page, in_page, out.subspan(done, want));
      if (!got) {
        if (done > 0) return done;  // what was read before the error
        return got.error();
      }
      if (got->bytes == 0) break;
      v.read_ahead(file, t, page);
      done += got->bytes;
      pos += got->bytes;
    }
    return done;
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("read: ") + e.what());
  }
}

void Vfs::opened(const Node& file) {
  try {
    Impl& v = *impl_;
    if (file.is_dir() || file.mount < 0 || file.size == 0) return;
    switch (v.mount(file.mount).prefetch) {
      case Prefetch::None:
        return;
      case Prefetch::File: {
        if (file.size <= kSmallObjectMax) return;  // the first read fetches it whole
        auto t = std::make_shared<const FetchTarget>(v.target(file));
        v.fetcher->enqueue(fill::Priority::Prefetch, t, 1, v.fetcher->page_count(*t));
        return;
      }
      case Prefetch::Directory: {
        const std::string parent = parent_prefix(file.key);
        auto l = v.listing(file.mount, parent, /*fill=*/true);
        if (l) v.prefetch_listing(file.mount, parent, **l);
        return;
      }
    }
  } catch (const std::exception& e) {
    OC_WARN("prefetch after open: %s", e.what());
  }
}

void Vfs::load(const Node& file) {
  try {
    if (file.is_dir() || file.size == 0) return;
    auto t = std::make_shared<const FetchTarget>(impl_->target(file));
    impl_->fetcher->enqueue(fill::Priority::Readahead, t, 0, impl_->fetcher->page_count(*t));
  } catch (const std::exception& e) {
    OC_WARN("load: %s", e.what());
  }
}

FetchProgress Vfs::background_progress() { return impl_->fetcher->progress(); }
void Vfs::wait_background() { impl_->fetcher->drain(); }
void Vfs::cancel_background() { impl_->fetcher->cancel(); }

std::uint64_t Vfs::cached_bytes(const Node& file) {
  if (file.is_dir()) return 0;
  const FetchTarget t = impl_->target(file);
  std::uint64_t bytes = 0;
  for (std::uint32_t p = 0, n = impl_->fetcher->page_count(t); p < n; ++p) {
    if (impl_->cache->contains(t.id, p)) bytes += impl_->fetcher->page_ref(t, p).length;
  }
  return bytes;
}

void Vfs::evict(const Node& file) {
  if (file.is_dir()) return;
  const FetchTarget t = impl_->target(file);
  for (std::uint32_t p = 0, n = impl_->fetcher->page_count(t); p < n; ++p) {
    impl_->cache->unpin(t.id, p);  // a pinned page would keep its region forever
    impl_->cache->evict(t.id, p);
  }
}

std::uint64_t Vfs::pin(const Node& file, bool pinned) {
  if (file.is_dir()) return 0;
  const FetchTarget t = impl_->target(file);
  std::uint64_t bytes = 0;
  for (std::uint32_t p = 0, n = impl_->fetcher->page_count(t); p < n; ++p) {
    if (!impl_->cache->contains(t.id, p)) continue;
    if (pinned) impl_->cache->pin(t.id, p);
    else impl_->cache->unpin(t.id, p);
    bytes += impl_->fetcher->page_ref(t, p).length;
  }
  return bytes;
}

}  // namespace objcache
