// SPDX-License-Identifier: Apache-2.0
// Records are pages of reserved ids: metadata_key() names them by kind and
// key, never by time, so a record made at any moment lives exactly its TTL
// (it carries made_ms). An expired record is dropped with evict_if (only the
// copy that was read, so of several processes that saw it expire one drops
// it) and filled again through the page cache's single-flight fill.
#include "meta/metadata_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "meta/node_ids.h"
#include "meta/range_listing.h"
#include "util/log.h"

namespace objcache::meta {
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

std::string parent_prefix(std::string_view key) {
  auto slash = key.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(0, slash + 1));
}

std::string memo_key(int m, const std::string& prefix) { return std::to_string(m) + '\0' + prefix; }

// The store could not be asked (down, stalled, throttled past the deadline):
// an expired record is then better than no answer.
bool unavailable(Status s) {
  return s == Status::Transient || s == Status::Timeout || s == Status::Throttled;
}

std::uint64_t fresh_nonce() {
  return std::random_device{}() | 1ull | (static_cast<std::uint64_t>(::getpid()) << 32);
}

// How many "serving an expired record" lines a process logs at warn level
// before it goes quiet (debug): an outage should be visible, not flood.
std::atomic<int> g_stale_warnings{0};
constexpr int kMaxStaleWarnings = 20;

}  // namespace

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MetadataCache::MetadataCache(const Config& cfg, PageCache& cache, store::StoreSet& stores, WallClock clock)
    : cfg_(cfg), cache_(cache), stores_(stores), clock_(clock ? std::move(clock) : WallClock(system_now_ms)) {}

ObjectId MetadataCache::record_id(int m, char kind, std::string_view key, std::string_view version) const {
  return ObjectId::of(mount(m).source.bucket, metadata_key(kind, key), version);
}

bool MetadataCache::fresh(int m, std::int64_t made_ms) const {
  const std::int64_t ttl = mount(m).metadata_ttl.count();
  if (ttl <= 0) return true;
  const std::int64_t now = now_ms();
  // A record from the future (the clock was set back) has no known age.
  return made_ms <= now && now - made_ms < ttl;
}

std::int64_t MetadataCache::stale_made_ms(int m) const {
  const std::int64_t ttl = mount(m).metadata_ttl.count();
  return now_ms() - ttl + std::min<std::int64_t>(ttl, kStaleRetry.count());
}

void MetadataCache::note_stale(int m, const std::string& what, const Error& why, std::int64_t made_ms) {
  const long long age_s = (now_ms() - made_ms) / 1000;
  if (g_stale_warnings.fetch_add(1, std::memory_order_relaxed) < kMaxStaleWarnings) {
    OC_WARN("%s of %s: cannot revalidate (%s); serving what the store said %llds ago", what.c_str(),
            mount(m).path.c_str(), why.describe().c_str(), age_s);
  } else {
    OC_DEBUG("%s of %s: cannot revalidate (%s); serving what the store said %llds ago", what.c_str(),
             mount(m).path.c_str(), why.describe().c_str(), age_s);
  }
}

Node MetadataCache::dir_node(int m, std::string prefix) const {
  Node n;
  n.kind = NodeKind::Directory;
  n.mount = m;
  n.ino = ino_of(m, prefix);
  n.dev = dev_of(m);
  n.key = std::move(prefix);
  return n;
}

// ---- listings -----------------------------------------------------------------

std::shared_ptr<const Listing> MetadataCache::memo_get(const std::string& k, std::uint64_t nonce) {
  MemoShard& s = shard(k);
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.map.find(k);
  return it == s.map.end() || it->second.nonce != nonce ? nullptr : it->second.listing;
}

void MetadataCache::memo_put(const std::string& k, std::uint64_t nonce, std::shared_ptr<const Listing> l) {
  MemoShard& s = shard(k);
  std::lock_guard<std::mutex> g(s.mu);
  if (s.entries + l->size() > kMemoMaxEntries / kMemoShards + l->size() / 2) {
    s.map.clear();
    s.entries = 0;
  }
  auto [it, fresh] = s.map.try_emplace(k);
  if (!fresh) s.entries -= it->second.listing ? it->second.listing->size() : 0;
  s.entries += l->size();
  it->second = MemoEntry{nonce, std::move(l)};
}

void MetadataCache::memo_erase(const std::string& k) {
  MemoShard& s = shard(k);
  std::lock_guard<std::mutex> g(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return;
  s.entries -= it->second.listing ? it->second.listing->size() : 0;
  s.map.erase(it);
}

Result<std::shared_ptr<const Manifest>> MetadataCache::manifest(int m) {
  std::lock_guard<std::mutex> g(manifest_mu_);
  auto it = manifests_.find(m);
  if (it != manifests_.end()) return it->second;
  Result<std::shared_ptr<const Manifest>> r = make_error(Status::IoError, "");
  if (auto loaded = Manifest::load(mount(m).manifest, mount(m).source.prefix)) {
    r = std::make_shared<const Manifest>(std::move(*loaded));
  } else {
    OC_ERROR("mount %s: %s; its files cannot be listed or opened", mount(m).path.c_str(),
             loaded.error().message.c_str());
    r = loaded.error();
  }
  manifests_.emplace(m, r);
  return r;
}

Result<Listing> MetadataCache::fetch_listing(int m, const std::string& prefix) {
  if (!mount(m).manifest.empty()) {
    auto man = manifest(m);
    if (!man) return man.error();
    std::vector<ObjectInfo> objects;
    std::vector<std::string> prefixes;
    const std::string& root = mount(m).source.prefix;
    if (!prefix.starts_with(root)) return make_error(Status::NotFound, "outside the mount: " + prefix);
    (*man)->list(std::string_view(prefix).substr(root.size()), &objects, &prefixes);
    return make_listing(m, prefix, std::move(objects), prefixes);
  }
  auto st = stores_.of(m);
  if (!st) return st.error();
  auto listed = list_prefix(**st, prefix, mount(m).store.list_concurrency,
                            [this] { cache_.count_metadata(PageCache::MetaRequest::List); });
  if (!listed) return listed.error();
  return make_listing(m, prefix, std::move(listed->objects), listed->common_prefixes);
}

std::shared_ptr<const Listing> MetadataCache::publish_listing(int m, const std::string& prefix, Listing l,
                                                              std::span<std::byte> dst) {
  auto shared = std::make_shared<const Listing>(std::move(l));
  std::vector<std::byte> blob = encode_listing(*shared);
  const ListingRecord rec{blob.size(), fresh_nonce(), now_ms()};
  const ObjectId blob_id = record_id(m, 'L', prefix, std::to_string(rec.nonce));
  const std::uint64_t ps = cache_.page_size();
  // The blob's pages go in before the record that names them.
  for (std::uint64_t off = 0, page = 0; off < blob.size(); off += ps, ++page) {
    auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, blob.size() - off));
    std::byte one[1];
    (void)cache_.read(PageRef{blob_id, static_cast<std::uint32_t>(page), len, PageRef::kMetadata}, 0, one,
                      [&](std::span<std::byte> d) -> Result<std::size_t> {
                        std::memcpy(d.data(), blob.data() + off, len);
                        return std::size_t{len};
                      });
  }
  encode_listing_record(rec, dst);
  memo_put(memo_key(m, prefix), rec.nonce, shared);
  return shared;
}

Result<Listing> MetadataCache::read_blob(int m, const std::string& prefix, const ListingRecord& rec) {
  const ObjectId blob_id = record_id(m, 'L', prefix, std::to_string(rec.nonce));
  const std::uint64_t ps = cache_.page_size();
  std::vector<std::byte> blob(rec.length);
  for (std::uint64_t off = 0, page = 0; off < rec.length; off += ps, ++page) {
    auto len = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, rec.length - off));
    auto got = cache_.read(PageRef{blob_id, static_cast<std::uint32_t>(page), len, PageRef::kMetadata}, 0,
                           std::span(blob).subspan(off, len),
                           [](std::span<std::byte>) -> Result<std::size_t> {
                             return make_error(Status::NotFound, "listing page evicted");
                           });
    if (!got) return got.error();
    if (got->bytes != len) return make_error(Status::IoError, "listing page short");
  }
  return decode_listing(blob);
}

Result<std::shared_ptr<const Listing>> MetadataCache::listing(int m, const std::string& prefix, Fill fill) {
  const ObjectId rec_id = record_id(m, 'R', prefix);
  const std::string mk = memo_key(m, prefix);
  const PageRef rec_ref{rec_id, 0, kListingRecordSize, PageRef::kMetadata};
  std::optional<ListingRecord> stale;  // an expired record this call dropped
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::byte bytes[kListingRecordSize];
    std::shared_ptr<const Listing> built;  // set when this process did the LIST
    Result<PageRead> got = make_error(Status::NotFound, "listing not cached");
    if (fill == Fill::Yes) {
      got = cache_.read(rec_ref, 0, bytes, [&](std::span<std::byte> dst) -> Result<std::size_t> {
        auto l = fetch_listing(m, prefix);
        if (!l) {
          if (!stale || !unavailable(l.status())) return l.error();
          note_stale(m, "the listing of " + (prefix.empty() ? std::string("the root") : prefix), l.error(),
                     stale->made_ms);
          ListingRecord keep = *stale;
          keep.made_ms = stale_made_ms(m);
          encode_listing_record(keep, dst);
          return dst.size();
        }
        built = publish_listing(m, prefix, std::move(*l), dst);
        return dst.size();
      });
    } else {
      got = cache_.lookup(rec_ref, 0, bytes);
    }
    if (!got) return got.error();
    if (built) return built;
    auto rec = decode_listing_record(bytes);
    if (!rec) {
      cache_.evict_if(rec_id, 0, got->version);
      continue;
    }
    if (!fresh(m, rec->made_ms)) {
      if (fill == Fill::No) return make_error(Status::NotFound, "listing expired");
      // Dropped by us, or by another process that saw it first: either
      // way the next round fills it anew (one LIST node-wide).
      stale = *rec;
      cache_.evict_if(rec_id, 0, got->version);
      continue;
    }
    if (auto hit = memo_get(mk, rec->nonce)) return hit;
    auto blob = read_blob(m, prefix, *rec);
    if (!blob) {
      // The blob's pages were evicted (or are damaged): forget the record
      // and list again.
      cache_.evict_if(rec_id, 0, got->version);
      if (fill == Fill::No) return make_error(Status::NotFound, "listing evicted");
      stale.reset();
      continue;
    }
    auto shared = std::make_shared<const Listing>(std::move(*blob));
    memo_put(mk, rec->nonce, shared);
    return shared;
  }
  if (fill == Fill::No) return make_error(Status::NotFound, "listing not cached");
  // The cache cannot hold it (full with eviction "none"): list directly.
  auto l = fetch_listing(m, prefix);
  if (!l) return l.error();
  return std::make_shared<const Listing>(std::move(*l));
}

// ---- stat records ---------------------------------------------------------------

Result<StatRecord> MetadataCache::query(int m, const std::string& key) {
  auto st = stores_.of(m);
  if (!st) return st.error();
  StatRecord rec;
  rec.made_ms = now_ms();
  auto info = (*st)->head(key);
  cache_.count_metadata(PageCache::MetaRequest::Head);
  if (info) {
    rec.kind = RecordKind::File;
    rec.size = info->size;
    rec.mtime = info->mtime;
    rec.etag = info->etag;
    if (rec.etag.size() > kMaxEtag) return make_error(Status::Unsupported, "ETag too long");
    return rec;
  }
  if (info.status() != Status::NotFound) return info.error();
  // No object: a directory if any key lies below key + '/'.
  ListRequest req;
  req.prefix = key + '/';
  req.delimiter = "/";
  req.max_keys = 1;
  auto page = (*st)->list(req);
  cache_.count_metadata(PageCache::MetaRequest::List);
  if (!page) return page.error();
  bool any = !page->objects.empty() || !page->common_prefixes.empty();
  rec.kind = any ? RecordKind::Directory : RecordKind::Missing;
  return rec;
}

Result<StatRecord> MetadataCache::head_record(int m, const std::string& key) {
  const ObjectId id = record_id(m, 'S', key);
  const PageRef ref{id, 0, kStatRecordSize, PageRef::kMetadata};
  std::optional<StatRecord> stale;
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::byte bytes[kStatRecordSize];
    bool filled = false;
    auto got = cache_.read(ref, 0, bytes, [&](std::span<std::byte> dst) -> Result<std::size_t> {
      auto rec = query(m, key);
      if (!rec) {
        if (!stale || !unavailable(rec.status())) return rec.error();
        note_stale(m, "the stat of " + key, rec.error(), stale->made_ms);
        StatRecord keep = *stale;
        keep.made_ms = stale_made_ms(m);
        rec = std::move(keep);
      }
      auto enc = encode_stat_record(*rec, dst);
      if (!enc) return enc.error();
      filled = true;
      return dst.size();
    });
    if (!got) return got.error();
    auto rec = decode_stat_record(bytes);
    if (!rec) {
      cache_.evict_if(id, 0, got->version);
      continue;
    }
    if (filled || fresh(m, rec->made_ms)) return rec;
    stale = std::move(*rec);
    cache_.evict_if(id, 0, got->version);
  }
  return query(m, key);  // the cache cannot hold it: ask directly
}

Result<Node> MetadataCache::stat(int m, const std::string& key) {
  const std::string parent = parent_prefix(key);
  const std::string name = key.substr(parent.size());

  // A listing of the parent already in the cache answers, positive or
  // negative, with no request. With a manifest, the listing always
  // answers (it costs no request) and nothing is ever asked of the store.
  const bool fixed = !mount(m).manifest.empty();
  auto l = listing(m, parent, fixed ? Fill::Yes : Fill::No);
  if (fixed && !l) return l.error();
  if (l) {
    const Listing& entries = **l;
    auto it = std::lower_bound(entries.begin(), entries.end(), name,
                               [](const DirEntry& e, const std::string& n) { return e.name < n; });
    if (it == entries.end() || it->name != name) {
      return make_error(Status::NotFound, "no such key: " + key);
    }
    if (it->kind == NodeKind::Directory) return dir_node(m, key + '/');
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
  if (fixed) return make_error(Status::IoError, "manifest entry without an ETag: " + key);
  auto rec = head_record(m, key);
  if (!rec) return rec.error();
  switch (rec->kind) {
    case RecordKind::Missing:
      return make_error(Status::NotFound, "no such key: " + key);
    case RecordKind::Directory:
      return dir_node(m, key + '/');
    case RecordKind::File:
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
  n.key = key;
  return n;
}

void MetadataCache::forget(int m, const std::string& key) {
  std::string k = key;
  if (!k.empty() && k.back() == '/') {
    cache_.evict(record_id(m, 'R', k), 0);
    memo_erase(memo_key(m, k));
    k.pop_back();
  }
  cache_.evict(record_id(m, 'S', k), 0);
  const std::string parent = parent_prefix(k);
  cache_.evict(record_id(m, 'R', parent), 0);
  memo_erase(memo_key(m, parent));
}

void MetadataCache::remember_file(int m, const std::string& key, std::uint64_t size, std::int64_t mtime,
                                  const std::string& etag) {
  if (etag.size() > kMaxEtag) return;
  StatRecord rec;
  rec.kind = RecordKind::File;
  rec.size = size;
  rec.mtime = mtime;
  rec.etag = etag;
  rec.made_ms = now_ms();
  std::byte bytes[kStatRecordSize];
  if (!encode_stat_record(rec, bytes)) return;
  const ObjectId id = record_id(m, 'S', key);
  cache_.evict(id, 0);
  (void)cache_.admit(PageRef{id, 0, kStatRecordSize, PageRef::kMetadata}, bytes);
}

}  // namespace objcache::meta
