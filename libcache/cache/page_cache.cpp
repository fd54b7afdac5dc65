// SPDX-License-Identifier: Apache-2.0
// PageCache: the read path (RAM, spill, fill) over the shared segment.
#include "objcache/page_cache.h"

#include "cache/page_fills.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "ram/eviction_policy.h"
#include "fill/gate.h"
#include "fill/claim_table.h"
#include "index/index.h"
#include "ram/region_table.h"
#include "shm/segment.h"
#include "spill/spill_store.h"
#include "stats/stats.h"
#include "util/checksum.h"
#include "util/log.h"

namespace objcache {

using shm::Counter;

ObjectId ObjectId::of(std::string_view bucket, std::string_view key, std::string_view etag) {
  std::string s;
  s.reserve(bucket.size() + key.size() + etag.size() + 2);
  s.append(bucket).push_back('\0');
  s.append(key).push_back('\0');
  s.append(etag);
  XXH128_hash_t h = XXH3_128bits(s.data(), s.size());
  return ObjectId{h.low64, h.high64};
}

namespace {

std::uint32_t load_magic(const shm::ItemHeader* h) {
  return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(h->magic)).load(std::memory_order_acquire);
}

constexpr std::uint32_t kPinnedFlag = 1;

}  // namespace

struct PageCache::Impl {
  CacheConfig cfg;
  std::unique_ptr<shm::Segment> seg;
  std::unique_ptr<stats::Stats> stats;
  std::unique_ptr<ram::EvictionPolicy> policy;
  std::unique_ptr<ram::RegionTable> regions;
  std::unique_ptr<index::Index> index;
  std::unique_ptr<fill::ClaimTable> claims;
  std::unique_ptr<spill::SpillStore> spill;
  std::unique_ptr<fill::Gate> gate;

  // Records a data page read, for the working-set estimate.
  void seen(const PageRef& ref) {
    if (ref.mount == PageRef::kMetadata) return;
    stats->note_seen(index::page_hash(ref.id.lo, ref.id.hi, ref.page), ref.length);
  }

  void count(Counter c, std::uint64_t n, int mount) {
    // Metadata pages are counted by their fillers (count_remote), which
    // know how many requests a listing took; only a failed fill (a LIST or
    // HEAD that failed: the error a program then sees) counts, in the totals.
    if (mount == PageRef::kMetadata) {
      if (c == Counter::Errors) stats->add(c, n, -1);
      return;
    }
    stats->add(c, n, mount);
  }

  // A spill copy found damaged (and dropped) is an error node-wide, so
  // cachectl stats shows it after the process that met it is gone.
  template <typename R>
  void count_spill_damage(const R& read, int mount) {
    if (!read && read.status() == Status::ChecksumError) count(Counter::Errors, 1, mount);
  }

  // Runs fn(header, data) on the RAM copy of the page while it is pinned.
  // Returns false on a miss. No lock, no system call.
  template <typename F>
  bool with_ram_page(const ObjectId& id, std::uint32_t page, F&& fn) {
    const std::uint64_t h = index::page_hash(id.lo, id.hi, page);
    const std::uint64_t rsize = regions->region_size();
    bool hit = false;
    index->find(h, [&](std::uint64_t e) {
      index::Location loc = index::decode(e);
      if (!regions->pin(loc.region, loc.gen)) return false;
      const shm::ItemHeader* ih = regions->item(loc.region, loc.offset);
      if (load_magic(ih) == shm::kItemMagic && static_cast<std::uint8_t>(ih->region_gen) == loc.gen &&
          ih->id_lo == id.lo && ih->id_hi == id.hi && ih->page == page &&
          loc.offset + sizeof(shm::ItemHeader) + ih->length <= rsize) {
        fn(*ih, reinterpret_cast<const std::byte*>(ih + 1), loc, e, h);
        regions->touch(loc.region);
        hit = true;
      }
      regions->unpin(loc.region);
      return hit;
    });
    return hit;
  }

  bool copy_from_ram(const PageRef& ref, std::uint32_t offset, std::span<std::byte> out,
                     std::uint64_t* version) {
    return with_ram_page(ref.id, ref.page,
                         [&](const shm::ItemHeader& ih, const std::byte* data, const index::Location&,
                             std::uint64_t entry, std::uint64_t) {
                           std::size_t n = std::min<std::size_t>(out.size(), ih.length > offset ? ih.length - offset : 0);
                           std::memcpy(out.data(), data + offset, n);
                           *version = entry;
                         });
  }

  bool stale(std::uint64_t e) const {
    index::Location loc = index::decode(e);
    if (loc.region >= regions->count()) return true;
    std::uint64_t s = regions->desc(loc.region).state.load(std::memory_order_acquire);
    shm::RegionPhase ph = shm::state_phase(s);
    return (ph != shm::RegionPhase::Open && ph != shm::RegionPhase::Sealed) ||
           static_cast<std::uint8_t>(shm::state_gen(s)) != loc.gen;
  }

  // Sets or clears the item's pinned flag; the region counts pinned items
  // and is never reclaimed while the count is above zero.
  void set_pinned(const ObjectId& id, std::uint32_t page, bool pinned) {
    with_ram_page(id, page, [&](const shm::ItemHeader& ih, const std::byte*, const index::Location& loc, auto&&...) {
      auto flags = std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(ih.flags));
      std::uint32_t f = flags.load(std::memory_order_relaxed);
      while (((f & kPinnedFlag) != 0) != pinned) {
        std::uint32_t nf = pinned ? (f | kPinnedFlag) : (f & ~kPinnedFlag);
        if (flags.compare_exchange_weak(f, nf, std::memory_order_acq_rel)) {
          auto& count = regions->desc(loc.region).pinned;
          if (pinned) count.fetch_add(1, std::memory_order_acq_rel);
          else count.fetch_sub(1, std::memory_order_acq_rel);
          return;
        }
      }
    });
  }

  // Completes a reservation holding the page: header, index entry, unpin.
  // Returns the index entry (PageRead::version).
  std::uint64_t publish(const PageRef& ref, const ram::Reservation& res) {
    shm::ItemHeader* h = res.header;
    h->id_lo = ref.id.lo;
    h->id_hi = ref.id.hi;
    h->page = ref.page;
    h->flags = 0;
    h->checksum = checksum64(res.data.data(), res.data.size());
    h->object_offset = static_cast<std::uint64_t>(ref.page) * cfg.page_size;
    index::Location loc{res.region, res.offset, static_cast<std::uint8_t>(res.gen)};
    std::uint64_t hash = index::page_hash(ref.id.lo, ref.id.hi, ref.page);
    const std::uint64_t entry = index::encode(hash, loc);
    regions->publish(res);
    index->insert(hash, entry, [&](std::uint64_t e) { return stale(e); });
    regions->release(res);
    return entry;
  }
};

PageCache::PageCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PageCache::~PageCache() = default;

Result<std::unique_ptr<PageCache>> PageCache::open(const CacheConfig& cfg, const PageCacheOptions& opts) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->cfg = cfg;
    if (!opts.create) {
      std::string path = shm::Segment::path_for(cfg.name, opts.shm_dir);
      if (::access(path.c_str(), F_OK) != 0) {
        return make_error(Status::NotFound, "no cache segment " + path + " (no process has used cache '" +
                                                cfg.name + "' since boot)");
      }
    }
    auto seg = shm::Segment::open(cfg, opts.shm_dir);
    if (!seg) return seg.error();
    impl->seg = std::move(*seg);
    const shm::Geometry& g = impl->seg->geometry();
    impl->stats = std::make_unique<stats::Stats>(*impl->seg);
    impl->policy = ram::make_eviction_policy(cfg.eviction);
    impl->regions = std::make_unique<ram::RegionTable>(*impl->seg, *impl->stats, *impl->policy);
    impl->index = std::make_unique<index::Index>(impl->seg->index(), g.index_shards, g.shard_entries);
    impl->claims = std::make_unique<fill::ClaimTable>(*impl->seg, opts.fill_deadline);
    impl->gate = std::make_unique<fill::Gate>(*impl->seg, *impl->stats);
    if (!cfg.spill_dir.empty()) {
      auto spill = spill::SpillStore::open(spill::SpillOptions::from(cfg));
      if (spill) {
        impl->spill = std::move(*spill);
        spill::SpillStore* sp = impl->spill.get();
        // Pages are written through to the spill tier when fetched; a page
        // that is not there yet (dropped from a full queue) goes at eviction.
        impl->regions->set_reclaim_sink([sp](const shm::ItemHeader& h, std::span<const std::byte> data) {
          spill::BlockKey k{h.id_lo, h.id_hi, h.page};
          if (!sp->contains(k)) sp->submit(k, "", h.object_offset, data);
        });
      } else {
        OC_WARN("spill tier disabled: %s", spill.error().describe().c_str());
      }
    }
    return std::unique_ptr<PageCache>(new PageCache(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("page cache: ") + e.what());
  }
}

std::uint64_t PageCache::page_size() const { return impl_->cfg.page_size; }

Result<PageRead> PageCache::lookup(const PageRef& ref, std::uint32_t offset, std::span<std::byte> out) {
  Impl& m = *impl_;
  if (offset >= ref.length) return PageRead{0, Tier::Ram};
  auto part = out.first(std::min<std::size_t>(out.size(), ref.length - offset));
  std::uint64_t version = 0;
  if (m.copy_from_ram(ref, offset, part, &version)) {
    m.count(Counter::RamHits, 1, ref.mount);
    m.count(Counter::ServedBytes, part.size(), ref.mount);
    m.seen(ref);
    return PageRead{part.size(), Tier::Ram, version};
  }
  return make_error(Status::NotFound, "page not cached");
}

Result<PageRead> PageCache::read(const PageRef& ref, std::uint32_t offset, std::span<std::byte> out,
                                 const PageFiller& fill) {
  Impl& m = *impl_;
  if (ref.length > m.cfg.page_size) {
    return make_error(Status::InvalidArgument, "page length over page_size");
  }
  if (offset >= ref.length) return PageRead{0, Tier::Ram};
  auto part = out.first(std::min<std::size_t>(out.size(), ref.length - offset));
  m.seen(ref);
  std::uint64_t version = 0;
  if (m.copy_from_ram(ref, offset, part, &version)) {
    m.count(Counter::RamHits, 1, ref.mount);
    m.count(Counter::ServedBytes, part.size(), ref.mount);
    return PageRead{part.size(), Tier::Ram, version};
  }

  for (int round = 0; round < 8; ++round) {
    auto claim = m.claims->acquire(ref.id.lo, ref.id.hi, ref.page);
    if (!claim) {
      m.count(Counter::Errors, 1, ref.mount);
      return claim.error();
    }
    bool mine = claim->kind != fill::Claim::Kind::Done;
    // Whoever filled it, or we after claiming: it may be there now.
    if (m.copy_from_ram(ref, offset, part, &version)) {
      if (mine) m.claims->complete(*claim, Status::Ok);
      m.count(Counter::RamHits, 1, ref.mount);
      m.count(Counter::ServedBytes, part.size(), ref.mount);
      return PageRead{part.size(), Tier::Ram, version};
    }
    if (!mine) continue;  // the filler could not cache it: claim it ourselves

    auto res = m.regions->reserve(ref.length);
    if (!res) {
      // Full and nothing may be evicted (eviction = "none", or all pinned):
      // serve the page without caching it.
      std::vector<std::byte> buf(ref.length);
      auto got = fill(buf);
      m.claims->complete(*claim, got ? Status::Ok : got.status());
      if (!got) {
        m.count(Counter::Errors, 1, ref.mount);
        return got.error();
      }
      std::memcpy(part.data(), buf.data() + offset, part.size());
      m.count(Counter::Misses, 1, ref.mount);
      m.count(Counter::RemoteRequests, 1, ref.mount);
      m.count(Counter::RemoteBytes, *got, ref.mount);
      m.count(Counter::ServedBytes, part.size(), ref.mount);
      return PageRead{part.size(), Tier::Remote};
    }

    Tier tier = Tier::Remote;
    if (m.spill) {
      auto s = m.spill->read(spill::BlockKey{ref.id.lo, ref.id.hi, ref.page}, res->data);
      if (s && *s == ref.length) tier = Tier::Spill;
      m.count_spill_damage(s, ref.mount);
    }
    if (tier == Tier::Remote) {
      auto got = fill(res->data);
      if (!got || *got != ref.length) {
        Error err = got ? make_error(Status::IoError, "fill returned " + std::to_string(*got) +
                                                          " bytes for a page of " + std::to_string(ref.length))
                        : got.error();
        m.regions->release(*res);
        m.claims->complete(*claim, err.status);
        m.count(Counter::Errors, 1, ref.mount);
        return err;
      }
      m.count(Counter::Misses, 1, ref.mount);
      m.count(Counter::RemoteRequests, 1, ref.mount);
      m.count(Counter::RemoteBytes, *got, ref.mount);
      // Write-through, so a restarted node finds the page on SSD. Not a
      // metadata record: the spill writer is asynchronous, so a record
      // written after its forget() (a mkdir, a commit) would come back.
      if (m.spill && ref.mount != PageRef::kMetadata) {
        m.spill->submit(spill::BlockKey{ref.id.lo, ref.id.hi, ref.page}, "",
                        static_cast<std::uint64_t>(ref.page) * m.cfg.page_size, res->data);
      }
    } else {
      m.count(Counter::SpillHits, 1, ref.mount);
    }
    std::memcpy(part.data(), res->data.data() + offset, part.size());
    version = m.publish(ref, *res);
    m.claims->complete(*claim, Status::Ok);
    m.count(Counter::ServedBytes, part.size(), ref.mount);
    return PageRead{part.size(), tier, version};
  }
  return make_error(Status::Transient, "could not fill the page (lost too many races)");
}

bool PageCache::contains(const ObjectId& id, std::uint32_t page) {
  return impl_->with_ram_page(id, page, [](auto&&...) {});
}

namespace cache {

struct Access {
  static PageCache::Impl& of(PageCache& pc) { return *pc.impl_; }
};

std::optional<PendingFill> try_begin_fill(PageCache& pc, const PageRef& ref, bool may_evict, FillSkip* why) {
  auto& m = Access::of(pc);
  FillSkip ignored;
  FillSkip& skip = why != nullptr ? *why : ignored;
  skip = FillSkip::Cached;
  if (ref.length == 0) return std::nullopt;
  if (ref.length > m.cfg.page_size) {
    skip = FillSkip::NoRoom;
    return std::nullopt;
  }
  auto cached = [&] { return m.with_ram_page(ref.id, ref.page, [](auto&&...) {}); };
  if (cached()) return std::nullopt;
  auto claim = m.claims->try_acquire(ref.id.lo, ref.id.hi, ref.page);
  if (!claim || claim->kind == fill::Claim::Kind::Busy) {
    skip = FillSkip::Busy;
    return std::nullopt;
  }
  // Filled between our look and the claim?
  if (cached()) {
    m.claims->complete(*claim, Status::Ok);
    return std::nullopt;
  }
  auto res = m.regions->reserve(ref.length, may_evict);
  if (!res) {
    m.claims->complete(*claim, Status::Ok);  // waiters look again and fill it themselves
    skip = FillSkip::NoRoom;
    return std::nullopt;
  }
  if (m.spill) {
    auto s = m.spill->read(spill::BlockKey{ref.id.lo, ref.id.hi, ref.page}, res->data);
    m.count_spill_damage(s, ref.mount);
    if (s && *s == ref.length) {
      m.publish(ref, *res);
      m.claims->complete(*claim, Status::Ok);
      return std::nullopt;
    }
  }
  PendingFill f;
  f.ref = ref;
  f.data = res->data;
  f.claim_slot = claim->slot;
  f.claim_started_ns = claim->started_ns;
  f.claimed = claim->kind == fill::Claim::Kind::Mine;
  f.region = res->region;
  f.offset = res->offset;
  f.gen = res->gen;
  f.header = res->header;
  return f;
}

void end_fill(PageCache& pc, PendingFill& f, const Result<std::size_t>& got, bool prefetched) {
  auto& m = Access::of(pc);
  ram::Reservation res;
  res.region = f.region;
  res.offset = f.offset;
  res.gen = f.gen;
  res.length = f.ref.length;
  res.header = static_cast<shm::ItemHeader*>(f.header);
  res.data = f.data;
  fill::Claim claim{f.claimed ? fill::Claim::Kind::Mine : fill::Claim::Kind::Unclaimed, f.claim_slot,
                    f.claim_started_ns};
  if (!got || *got != f.ref.length) {
    m.regions->release(res);
    // Ok, not the error: a waiter then looks, misses, and fetches the page
    // itself, so one failed prefetch never fails a demand read.
    m.claims->complete(claim, Status::Ok);
    if (!got) m.count(Counter::Errors, 1, f.ref.mount);
    return;
  }
  m.count(Counter::RemoteBytes, f.ref.length, f.ref.mount);
  if (prefetched) m.count(Counter::PrefetchedBytes, f.ref.length, f.ref.mount);
  if (m.spill && f.ref.mount != PageRef::kMetadata) {  // as in read(): records stay in RAM
    m.spill->submit(spill::BlockKey{f.ref.id.lo, f.ref.id.hi, f.ref.page}, "",
                    static_cast<std::uint64_t>(f.ref.page) * m.cfg.page_size, f.data);
  }
  m.publish(f.ref, res);
  m.claims->complete(claim, Status::Ok);
}

void abandon_fill(PageCache& pc, PendingFill& f) {
  fill::Claim claim{f.claimed ? fill::Claim::Kind::Mine : fill::Claim::Kind::Unclaimed, f.claim_slot,
                    f.claim_started_ns};
  Access::of(pc).claims->complete(claim, Status::Ok);
}

fill::Gate& gate(PageCache& pc) { return *Access::of(pc).gate; }

std::uint32_t fill_waiters(PageCache& pc, const PageRef& ref) {
  return Access::of(pc).claims->waiters(ref.id.lo, ref.id.hi, ref.page);
}

}  // namespace cache

void PageCache::evict(const ObjectId& id, std::uint32_t page) {
  Impl& m = *impl_;
  std::uint64_t entry = 0;
  std::uint64_t hash = 0;
  m.with_ram_page(id, page, [&](const shm::ItemHeader&, const std::byte*, const index::Location&, std::uint64_t e,
                                std::uint64_t h) {
    entry = e;
    hash = h;
  });
  if (entry != 0) m.index->erase(hash, entry);
  if (m.spill) m.spill->remove(spill::BlockKey{id.lo, id.hi, page});
}

bool PageCache::evict_if(const ObjectId& id, std::uint32_t page, std::uint64_t version) {
  Impl& m = *impl_;
  if (version == 0) return false;
  const std::uint64_t hash = index::page_hash(id.lo, id.hi, page);
  if (!m.index->erase(hash, version)) return false;
  if (m.spill) m.spill->remove(spill::BlockKey{id.lo, id.hi, page});
  return true;
}

void PageCache::pin(const ObjectId& id, std::uint32_t page) { impl_->set_pinned(id, page, true); }

void PageCache::unpin(const ObjectId& id, std::uint32_t page) { impl_->set_pinned(id, page, false); }

void PageCache::count_remote(std::uint64_t bytes, int mount) {
  if (mount == PageRef::kMetadata) mount = -1;
  impl_->count(Counter::RemoteRequests, 1, mount);
  impl_->count(Counter::RemoteBytes, bytes, mount);
}

void PageCache::count_metadata(MetaRequest r) {
  impl_->count(Counter::RemoteRequests, 1, -1);
  impl_->count(r == MetaRequest::List ? Counter::ListRequests : Counter::HeadRequests, 1, -1);
}

void PageCache::count_upload(std::uint64_t bytes, std::uint64_t requests, bool failed, int mount) {
  impl_->count(Counter::UploadedBytes, bytes, mount);
  impl_->count(Counter::UploadRequests, requests, mount);
  if (failed) impl_->count(Counter::UploadsFailed, 1, mount);
}

bool PageCache::admit(const PageRef& ref, std::span<const std::byte> data) {
  Impl& m = *impl_;
  if (ref.length == 0 || ref.length > m.cfg.page_size || data.size() != ref.length) return false;
  if (m.with_ram_page(ref.id, ref.page, [](auto&&...) {})) return false;
  auto claim = m.claims->try_acquire(ref.id.lo, ref.id.hi, ref.page);
  if (!claim || claim->kind == fill::Claim::Kind::Busy) return false;
  auto res = m.regions->reserve(ref.length, /*may_evict=*/true);
  if (!res) {
    m.claims->complete(*claim, Status::Ok);
    return false;
  }
  std::memcpy(res->data.data(), data.data(), ref.length);
  if (m.spill && ref.mount != PageRef::kMetadata) {  // as in read(): records stay in RAM
    m.spill->submit(spill::BlockKey{ref.id.lo, ref.id.hi, ref.page}, "",
                    static_cast<std::uint64_t>(ref.page) * m.cfg.page_size, res->data);
  }
  m.publish(ref, *res);
  m.claims->complete(*claim, Status::Ok);
  return true;
}

CacheStats PageCache::stats() {
  Impl& m = *impl_;
  // Processes that died give back their gate slots and pins first, so
  // gets_in_flight and processes agree (cachectl stats after a crash).
  m.stats->reap_dead();
  stats::StatsSnapshot snap = m.stats->snapshot();
  auto convert = [](const stats::CounterSet& c) {
    CacheCounters out;
    out.ram_hits = c.get(Counter::RamHits);
    out.spill_hits = c.get(Counter::SpillHits);
    out.misses = c.get(Counter::Misses);
    out.served_bytes = c.get(Counter::ServedBytes);
    out.remote_bytes = c.get(Counter::RemoteBytes);
    out.remote_requests = c.get(Counter::RemoteRequests);
    out.prefetched_bytes = c.get(Counter::PrefetchedBytes);
    out.evictions = c.get(Counter::Evictions);
    out.errors = c.get(Counter::Errors);
    out.uploaded_bytes = c.get(Counter::UploadedBytes);
    out.upload_requests = c.get(Counter::UploadRequests);
    out.uploads_failed = c.get(Counter::UploadsFailed);
    out.list_requests = c.get(Counter::ListRequests);
    out.head_requests = c.get(Counter::HeadRequests);
    return out;
  };
  CacheStats s;
  s.total = convert(snap.total);
  for (const auto& mc : snap.mounts) s.mounts.push_back(convert(mc));
  const shm::Geometry& g = m.seg->geometry();
  s.ram_used_bytes = m.regions->used_bytes();
  s.ram_capacity_bytes = static_cast<std::uint64_t>(g.region_count) * g.region_size;
  s.index_entries = m.index->count_live();
  s.index_capacity = m.index->capacity();
  s.metadata_bytes = g.metadata_bytes();
  s.processes = snap.processes;
  s.working_set_bytes = m.stats->working_set_bytes();
  s.gets_in_flight = m.gate->in_flight();
  {
    const fill::LimitState ls = m.gate->limit_state(INT32_MAX);
    s.fetch_limit = m.seg->header().fetch_limit.load(std::memory_order_relaxed);
    s.fetch_limit_reason = fill::to_string(ls.reason);
    s.fetch_limit_changed = ls.changed_unix;
  }
  s.segment_path = m.seg->path();
  if (m.spill) {
    spill::SpillStats ss = m.spill->stats();
    s.spill_used_bytes = ss.used_bytes;
    s.spill_capacity_bytes = ss.capacity;
  }
  return s;
}

VerifyResult PageCache::verify() {
  Impl& m = *impl_;
  VerifyResult v;
  m.index->for_each_live([&](std::uint64_t e, std::atomic<std::uint64_t>& slot) {
    index::Location loc = index::decode(e);
    if (!m.regions->pin(loc.region, loc.gen)) return;
    const shm::ItemHeader* ih = m.regions->item(loc.region, loc.offset);
    if (load_magic(ih) == shm::kItemMagic && static_cast<std::uint8_t>(ih->region_gen) == loc.gen &&
        loc.offset + sizeof(shm::ItemHeader) + ih->length <= m.regions->region_size()) {
      ++v.ram_items;
      if (checksum64(ih + 1, ih->length) != ih->checksum) {
        ++v.ram_bad;
        std::uint64_t expected = e;
        slot.compare_exchange_strong(expected, index::kTombstone, std::memory_order_relaxed);
        m.count(Counter::Errors, 1, -1);
      }
    }
    m.regions->unpin(loc.region);
  });
  if (m.spill) {
    spill::VerifyReport r = m.spill->verify();
    v.spill_blocks = r.blocks_checked;
    v.spill_bad = r.bad_blocks;
    if (r.bad_blocks > 0) m.count(Counter::Errors, r.bad_blocks, -1);
  }
  return v;
}

void PageCache::flush_spill() {
  if (impl_->spill) impl_->spill->flush();
}

}  // namespace objcache
