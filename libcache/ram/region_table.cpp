// SPDX-License-Identifier: Apache-2.0
#include "ram/region_table.h"

#include <algorithm>
#include <atomic>

#include "objcache/config.h"
#include "util/log.h"
#include "util/process.h"

namespace objcache::ram {
namespace {

std::uint64_t item_span(std::uint32_t length) {
  return (sizeof(shm::ItemHeader) + length + shm::kItemAlign - 1) / shm::kItemAlign * shm::kItemAlign;
}

std::uint32_t load_magic(const shm::ItemHeader* h) {
  // acquire: the header fields and data were written before the magic.
  return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(h->magic)).load(std::memory_order_acquire);
}

void store_magic(shm::ItemHeader* h, std::uint32_t v) {
  std::atomic_ref<std::uint32_t>(h->magic).store(v, std::memory_order_release);
}

}  // namespace

RegionTable::RegionTable(shm::Segment& seg, stats::Stats& stats, EvictionPolicy& policy)
    : seg_(seg), stats_(stats), policy_(policy), prefault_(seg) {}

bool RegionTable::pin(std::uint32_t r, std::uint8_t gen8) {
  if (r >= count()) return false;
  std::atomic<std::uint64_t>& st = desc(r).state;
  std::uint64_t s = st.load(std::memory_order_acquire);
  for (;;) {
    shm::RegionPhase ph = shm::state_phase(s);
    if ((ph != shm::RegionPhase::Open && ph != shm::RegionPhase::Sealed) ||
        static_cast<std::uint8_t>(shm::state_gen(s)) != gen8 || shm::state_readers(s) == 0xffffff) {
      return false;
    }
    // acquire on success: we then see every item published in this generation.
    if (st.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_acquire)) {
      stats_.record_pin(r, +1);
      return true;
    }
  }
}

bool RegionTable::pin_open(std::uint32_t r, std::uint64_t& s) {
  std::atomic<std::uint64_t>& st = desc(r).state;
  s = st.load(std::memory_order_acquire);
  for (;;) {
    if (shm::state_phase(s) != shm::RegionPhase::Open || shm::state_readers(s) == 0xffffff) return false;
    if (st.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_acquire)) {
      stats_.record_pin(r, +1);
      return true;
    }
  }
}

void RegionTable::unpin(std::uint32_t r) {
  stats_.record_pin(r, -1);
  // release: our reads (and, for a writer, the item) happen before any
  // reclaim that sees the count drop.
  desc(r).state.fetch_sub(1, std::memory_order_release);
}

void RegionTable::seal(std::uint32_t r) {
  std::atomic<std::uint64_t>& st = desc(r).state;
  std::uint64_t s = st.load(std::memory_order_acquire);
  while (shm::state_phase(s) == shm::RegionPhase::Open) {
    std::uint64_t sealed = shm::region_state(shm::state_gen(s), shm::RegionPhase::Sealed, shm::state_readers(s));
    if (st.compare_exchange_weak(s, sealed, std::memory_order_acq_rel)) return;
  }
}

bool RegionTable::try_reclaim(std::uint32_t r) { return r < count() && ram::try_reclaim(desc(r)); }

void RegionTable::walk(std::uint32_t r, std::uint32_t gen, std::uint64_t limit,
                       const std::function<void(const shm::ItemHeader&, std::span<const std::byte>)>& fn) const {
  const std::uint64_t end = std::min<std::uint64_t>(limit, region_size());
  std::uint64_t off = 0;
  while (off + sizeof(shm::ItemHeader) <= end) {
    const shm::ItemHeader* h = item(r, static_cast<std::uint32_t>(off));
    std::uint32_t magic = load_magic(h);
    if (magic != shm::kItemMagic && magic != shm::kReservedMagic) break;  // a tail, or never written
    if (h->region_gen != gen) break;  // left from an earlier generation
    if (off + item_span(h->length) > end) break;
    if (magic == shm::kItemMagic) {
      fn(*h, std::span<const std::byte>(reinterpret_cast<const std::byte*>(h + 1), h->length));
    }
    off += item_span(h->length);
  }
}

std::uint32_t RegionTable::take_region(bool may_evict) {
  // A never-used region first, once the file system has memory behind it:
  // a write to a page a full tmpfs cannot back is a SIGBUS in the program.
  const std::uint32_t n = std::min(count(), unbacked_from_.load(std::memory_order_relaxed));
  for (std::uint32_t r = 0; r < n; ++r) {
    shm::RegionDesc& d = desc(r);
    std::uint64_t s = d.state.load(std::memory_order_acquire);
    if (shm::state_phase(s) != shm::RegionPhase::Free) continue;
    if (!d.state.compare_exchange_strong(s, shm::region_state(shm::state_gen(s), shm::RegionPhase::Reclaiming, 0),
                                         std::memory_order_acq_rel)) {
      continue;
    }
    if (prefault_.back(r) == Prefaulter::Backing::Full) {
      d.state.store(s, std::memory_order_release);  // Free again, for a process that finds room
      std::uint32_t was = unbacked_from_.load(std::memory_order_relaxed);
      while (r < was && !unbacked_from_.compare_exchange_weak(was, r, std::memory_order_relaxed)) {
      }
      if (was == shm::kNoRegion) {
        stats_.add(shm::Counter::Errors, 1);
        OC_WARN("shared memory full: the file system of %s cannot back region %u of %u, so the cache holds %s "
                "of its %s and evicts within that (enlarge it, e.g. docker run --shm-size, or lower cache.memory)",
                seg_.path().c_str(), r, count(), format_size(std::uint64_t{r} * region_size()).c_str(),
                format_size(std::uint64_t{count()} * region_size()).c_str());
      }
      break;
    }
    prefault_.taken(r);  // the next never-used ones get their pages off this path
    return r;
  }
  if (!may_evict) return shm::kNoRegion;
  const Regions view{std::span<shm::RegionDesc>(seg_.regions(), count()), seg_.header().clock_hand};
  std::uint32_t r = policy_.reclaim(view);
  if (r == shm::kNoRegion && stats_.reap_dead() > 0) r = policy_.reclaim(view);
  if (r == shm::kNoRegion) return shm::kNoRegion;

  shm::RegionDesc& d = desc(r);
  std::uint32_t items = 0;
  // try_reclaim bumped the generation; the items are of the one before.
  std::uint32_t old_gen = shm::state_gen(d.state.load(std::memory_order_acquire)) - 1;
  walk(r, old_gen, d.used.load(std::memory_order_relaxed), [&](const shm::ItemHeader& h, std::span<const std::byte> data) {
    ++items;
    if (sink_) sink_(h, data);
  });
  stats_.add(shm::Counter::Evictions, items);
  return r;
}

Result<Reservation> RegionTable::reserve(std::uint32_t length, bool may_evict) {
  const std::uint64_t need = item_span(length);
  if (need > region_size()) {
    return make_error(Status::InvalidArgument, "item of " + std::to_string(length) + " bytes exceeds a region");
  }
  shm::SegmentHeader& hdr = seg_.header();
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::uint32_t r = hdr.current_region.load(std::memory_order_acquire);
    if (r != shm::kNoRegion && r < count()) {
      std::uint64_t s = 0;
      if (pin_open(r, s)) {
        shm::RegionDesc& d = desc(r);
        std::uint64_t off = d.used.fetch_add(need, std::memory_order_relaxed);
        if (off + need <= region_size()) {
          Reservation res;
          res.region = r;
          res.offset = static_cast<std::uint32_t>(off);
          res.gen = shm::state_gen(s);
          res.length = length;
          res.header = item(r, res.offset);
          res.header->length = length;
          res.header->region_gen = res.gen;
          store_magic(res.header, shm::kReservedMagic);
          res.data = std::span<std::byte>(reinterpret_cast<std::byte*>(res.header + 1), length);
          return res;
        }
        // Full: mark where items end, then move everyone to a new region.
        if (off + sizeof(shm::ItemHeader) <= region_size()) store_magic(item(r, static_cast<std::uint32_t>(off)), shm::kTailMagic);
        unpin(r);
        seal(r);
      }
      hdr.current_region.compare_exchange_strong(r, shm::kNoRegion, std::memory_order_acq_rel);
      continue;
    }
    std::uint32_t fresh = take_region(may_evict);
    if (fresh == shm::kNoRegion) {
      return make_error(Status::NoSpace, may_evict ? "cache full and nothing can be evicted"
                                                   : "cache full (and this fill may not evict)");
    }
    shm::RegionDesc& d = desc(fresh);
    d.used.store(0, std::memory_order_relaxed);
    d.items.store(0, std::memory_order_relaxed);
    d.referenced.store(0, std::memory_order_relaxed);
    std::uint64_t s = d.state.load(std::memory_order_relaxed);
    // release: the reset above is visible to whoever pins it open.
    d.state.store(shm::region_state(shm::state_gen(s), shm::RegionPhase::Open, 0), std::memory_order_release);
    std::uint32_t none = shm::kNoRegion;
    if (!hdr.current_region.compare_exchange_strong(none, fresh, std::memory_order_acq_rel)) {
      // Another process installed one first; ours waits sealed and empty,
      // reclaimable at once.
      seal(fresh);
    }
  }
  return make_error(Status::Transient, "could not reserve cache space (contention)");
}

void RegionTable::publish(const Reservation& res) {
  store_magic(res.header, shm::kItemMagic);
  desc(res.region).items.fetch_add(1, std::memory_order_relaxed);
}

void RegionTable::release(const Reservation& res) { unpin(res.region); }

std::uint64_t RegionTable::used_bytes() const {
  std::uint64_t total = 0;
  for (std::uint32_t r = 0; r < count(); ++r) {
    shm::RegionPhase ph = shm::state_phase(desc(r).state.load(std::memory_order_relaxed));
    if (ph == shm::RegionPhase::Open || ph == shm::RegionPhase::Sealed) {
      total += std::min<std::uint64_t>(desc(r).used.load(std::memory_order_relaxed), region_size());
    }
  }
  return total;
}

}  // namespace objcache::ram
