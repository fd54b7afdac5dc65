// SPDX-License-Identifier: Apache-2.0
#include "spill/spill_store.h"

#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <utility>

#include "spill/spill_files.h"
#include "spill/spill_format.h"
#include "spill/spill_index.h"
#include "spill/spill_queue.h"
#include "util/log.h"

namespace objcache::spill {


namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

// Reads until the iovecs are full or the file ends. Returns the bytes read,
// or -1 with errno set. Advances iov as it goes.
ssize_t preadv_full(int fd, iovec* iov, int n, off_t off) {
  ssize_t total = 0;
  while (n > 0) {
    ssize_t r = ::preadv(fd, iov, n, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    total += r;
    off += r;
    auto left = static_cast<std::size_t>(r);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return total;
}

ssize_t pread_full(int fd, void* buf, std::size_t len, off_t off) {
  iovec iov{buf, len};
  return preadv_full(fd, &iov, 1, off);
}

// Writes all of buf or fails with errno set (a write that makes no
// progress is EIO).
bool pwrite_full(int fd, const std::byte* buf, std::size_t len, off_t off) {
  while (len > 0) {
    ssize_t w = ::pwrite(fd, buf, len, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (w == 0) {
      errno = EIO;
      return false;
    }
    buf += w;
    len -= static_cast<std::size_t>(w);
    off += w;
  }
  return true;
}

// A write past RLIMIT_FSIZE fails with EFBIG, and the kernel also sends
// SIGXFSZ to the whole process, whose default action kills it. Fail the
// same way before writing instead.
bool past_file_size_limit(std::uint64_t end) {
  rlimit lim{};
  return ::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
         end > lim.rlim_cur;
}

// Whether every write to the file behind fd moves its ctime to a value no
// earlier write had, so that an unchanged ctime proves the bytes unchanged:
// Linux 6.13 gave ext4, xfs, btrfs and tmpfs fine-grained ctimes once a
// ctime has been looked at (multigrain timestamps); before, two writes in
// one timer tick could share one.
bool ctime_moves_on_every_write(int fd) {
  utsname u{};
  unsigned major = 0, minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%u.%u", &major, &minor) != 2) return false;
  if (major < 6 || (major == 6 && minor < 13)) return false;
  struct statfs sf {};
  if (::fstatfs(fd, &sf) != 0) return false;
  switch (static_cast<unsigned long>(sf.f_type)) {
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
      return true;
    default:
      return false;
  }
}

bool same_key(const BlockHeader& h, const BlockKey& k) {
  return h.id_lo == k.id_lo && h.id_hi == k.id_hi && h.page == k.page;
}

}  // namespace

Result<std::unique_ptr<SpillStore>> SpillStore::open(const SpillOptions& opts) {
  if (opts.dir.empty()) return make_error(Status::InvalidArgument, "spill: no spill_dir");
  if (!valid_name(opts.cache_name))
    return make_error(Status::InvalidArgument,
                      "spill: cache name '" + opts.cache_name + "' is not [A-Za-z0-9._-]+");
  if (opts.page_size == 0 || opts.page_size > kMaxBlockData)
    return make_error(Status::InvalidArgument, "spill: page_size must be 1 B .. 64 MiB");
  Geometry g;
  g.capacity = opts.capacity / kBlockAlign * kBlockAlign;
  g.page_size = opts.page_size;
  if (g.capacity > kMaxCapacity)
    return make_error(Status::InvalidArgument, "spill: spill_size is over 16 TiB");
  if (g.capacity < 2 * block_alloc_bytes(opts.page_size))
    return make_error(Status::InvalidArgument,
                      "spill: spill_size must hold at least two pages (2 x page_size + 8 KiB)");
  if (opts.max_queue_bytes == 0)
    return make_error(Status::InvalidArgument, "spill: max_queue_bytes must be > 0");
  g.slot_count = SpillIndex::slot_count_for(g.capacity);

  try {
    auto files = open_spill_files(opts.dir, opts.cache_name, g);
    if (!files) return files.error();
    return std::unique_ptr<SpillStore>(new SpillStore(opts, files->data_fd,
                                                      std::move(files->index),
                                                      std::move(files->data_path)));
  } catch (const std::bad_alloc&) {
    return make_error(Status::IoError, "spill: out of memory while opening");
  }
}

SpillStore::SpillStore(const SpillOptions& opts, int data_fd,
                       std::unique_ptr<SpillIndex> index, std::string data_path)
    : opts_(opts),
      data_fd_(data_fd),
      index_(std::move(index)),
      data_path_(std::move(data_path)),
      marks_trusted_(ctime_moves_on_every_write(data_fd)) {}

bool SpillStore::data_ctime(std::int64_t* ns) const {
  struct stat st {};
  if (::fstat(data_fd_, &st) != 0) return false;
  *ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return true;
}

SpillStore::~SpillStore() {
  SpillQueue* q = queue_.load(std::memory_order_acquire);
  // A queue made by another pid is our parent's, copied by fork: its thread
  // does not exist here and its mutex may be held forever. It is leaked on
  // purpose; destroying it could hang.
  if (q != nullptr && q->owner() == ::getpid()) delete q;  // writes the rest, joins
  ::close(data_fd_);
}

bool SpillStore::enabled() const { return !disabled_.load(std::memory_order_relaxed); }

void SpillStore::disable(const char* what, int err) {
  if (disabled_.exchange(true, std::memory_order_relaxed)) return;  // one line per process
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof buf);
  OC_WARN("spill: %s %s failed: %s; the SSD tier is off for this process", what,
          data_path_.c_str(), text);
}

spill::SpillQueue* SpillStore::queue_for_this_process() {
  const pid_t pid = ::getpid();
  SpillQueue* q = queue_.load(std::memory_order_acquire);
  while (q == nullptr || q->owner() != pid) {
    // None yet, or the parent's (we are a forked child): build our own,
    // never touching the old one's lock.
    auto fresh = SpillQueue::start(
        opts_.max_queue_bytes, kMaxQueueBlocks,
        [this](PendingBlock& b) { write_block(b); });
    if (!fresh) {
      disable("starting the writer for", EAGAIN);
      return nullptr;
    }
    SpillQueue* mine = fresh->release();
    // acq_rel: publishes our queue; on failure acquires the winner's.
    if (queue_.compare_exchange_strong(q, mine, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      return mine;
    delete mine;  // another thread of this process won; q is now its queue
  }
  return q;
}

bool SpillStore::submit(const BlockKey& key, std::string_view etag, std::uint64_t object_offset,
                        std::span<const std::byte> data) {
  auto drop = [this] {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  };
  if (!enabled() || data.size() > opts_.page_size) return drop();
  SpillQueue* q = queue_for_this_process();
  if (q == nullptr || !q->has_room(data.size())) return drop();
  PendingBlock b;
  try {
    b.buf.reset(new std::byte[kHeaderSize + data.size()]);
  } catch (const std::bad_alloc&) {
    return drop();
  }
  if (!data.empty()) std::memcpy(b.buf.get() + kHeaderSize, data.data(), data.size());
  b.key = key;
  b.object_offset = object_offset;
  b.data_len = static_cast<std::uint32_t>(data.size());
  b.etag_len = static_cast<std::uint16_t>(std::min(etag.size(), kEtagMax));
  if (b.etag_len > 0) std::memcpy(b.etag, etag.data(), b.etag_len);
  if (!q->push(std::move(b))) return drop();
  return true;
}

void SpillStore::flush() {
  SpillQueue* q = queue_.load(std::memory_order_acquire);
  if (q != nullptr && q->owner() == ::getpid()) q->flush();
}

// On the writer thread.
void SpillStore::write_block(PendingBlock& b) {
  if (!enabled()) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t hash = key_hash(b.key);
  IndexSlot existing;
  const bool have = find_exact(hash, b.key, &existing);
  // A copy in the younger half of the log is kept; an older one is written
  // again, so blocks that keep coming back outlive the log's wrap.
  if (have && index_->cursor() - existing.logical <= index_->capacity() / 2) {
    duplicates_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t alloc = block_alloc_bytes(b.data_len);
  const std::uint64_t logical = index_->allocate(alloc);

  BlockHeader h{};
  h.magic = kBlockMagic;
  h.version = kBlockVersion;
  h.header_size = kHeaderSize;
  h.nonce = index_->nonce();
  h.logical_offset = logical;
  h.id_lo = b.key.id_lo;
  h.id_hi = b.key.id_hi;
  h.page = b.key.page;
  h.data_len = b.data_len;
  h.object_offset = b.object_offset;
  h.etag_len = b.etag_len;
  std::memcpy(h.etag, b.etag, b.etag_len);
  h.checksum = block_checksum(h, {b.buf.get() + kHeaderSize, b.data_len});
  std::memcpy(b.buf.get(), &h, kHeaderSize);

  const auto phys = static_cast<off_t>(logical % index_->capacity());
  const std::size_t len = kHeaderSize + b.data_len;
  int err = 0;
  if (past_file_size_limit(static_cast<std::uint64_t>(phys) + len))
    err = EFBIG;
  else if (!pwrite_full(data_fd_, b.buf.get(), len, phys))
    err = errno;
  if (err != 0) {
    disable("writing", err);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Lapped while writing (a tiny log and fast writers): the bytes may be
  // torn, so never publish them.
  if (!index_->intact(logical) ||
      !index_->publish(hash, logical, alloc, have ? &existing : nullptr)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  writes_.fetch_add(1, std::memory_order_relaxed);
}

bool SpillStore::find_exact(std::uint64_t hash, const BlockKey& key, IndexSlot* found) {
  return index_->probe(hash, [&](const IndexSlot& s) {
    BlockHeader h;
    const auto phys = static_cast<off_t>(s.logical % index_->capacity());
    if (pread_full(data_fd_, &h, kHeaderSize, phys) != static_cast<ssize_t>(kHeaderSize))
      return false;
    if (h.magic != kBlockMagic || h.nonce != index_->nonce() ||
        h.logical_offset != s.logical || !same_key(h, key))
      return false;
    *found = s;
    return true;
  });
}

SpillStore::Check SpillStore::read_into(const IndexSlot& s, const BlockKey& key,
                                        std::span<std::byte> out, std::size_t* len) {
  // The block's data length is within one alignment unit below max_data:
  // read what is surely data straight into out, the last unit into tail,
  // so out is never written past the block's end.
  const std::uint64_t max_data = s.alloc_bytes - kHeaderSize;
  const std::uint64_t lo = max_data > kBlockAlign ? max_data - kBlockAlign : 0;
  BlockHeader h;
  alignas(64) std::byte tail[kBlockAlign];
  iovec iov[3];
  int n = 0;
  iov[n++] = {&h, kHeaderSize};
  const std::size_t direct = std::min<std::size_t>(lo, out.size());
  if (direct > 0) iov[n++] = {out.data(), direct};
  if (out.size() >= lo) iov[n++] = {tail, max_data - lo};
  const auto phys = static_cast<off_t>(s.logical % index_->capacity());
  // The file's ctime before the read. A block marked good at it is read
  // from the page cache only (RWF_NOWAIT): bytes that come from the device
  // again are checked again.
  std::int64_t before = 0;
  const bool ctime_known = marks_trusted_ && data_ctime(&before);
  bool marked = ctime_known && index_->marked(s, before);
  ssize_t got = -1;
  if (marked) {
    std::size_t want = 0;
    for (int i = 0; i < n; ++i) want += iov[i].iov_len;
    iovec copy[3];
    std::copy(iov, iov + n, copy);
    got = ::preadv2(data_fd_, copy, n, phys, RWF_NOWAIT);
    // Short is fine when only slack past the block's data is missing (the
    // log's last block ends the file); else (EAGAIN, not all cached) read
    // it all below.
    if (got != static_cast<ssize_t>(want) &&
        (got < static_cast<ssize_t>(kHeaderSize) || h.data_len > max_data ||
         got < static_cast<ssize_t>(kHeaderSize + h.data_len)))
      marked = false;
  }
  if (!marked) got = preadv_full(data_fd_, iov, n, phys);
  // Anything wrong with a block that no writer has reached is damage;
  // after a writer reached it, it is just gone.
  const auto bad = [&] { return index_->intact(s.logical) ? Check::Bad : Check::Stale; };

  if (got < static_cast<ssize_t>(kHeaderSize) || h.magic != kBlockMagic ||
      h.version != kBlockVersion || h.header_size != kHeaderSize ||
      h.nonce != index_->nonce() || h.logical_offset != s.logical)
    return bad();
  if (!same_key(h, key)) {
    // Most likely another key whose tag collides with ours; only its
    // checksum tells that apart from a damaged key field.
    std::vector<std::byte> buf;
    BlockKey other;
    Check c = check_block(s, buf, &other);
    return c == Check::Good ? Check::Foreign : c;
  }
  if (h.data_len > index_->page_size() || block_alloc_bytes(h.data_len) != s.alloc_bytes)
    return bad();
  if (h.data_len > out.size()) return Check::TooSmall;
  if (got < static_cast<ssize_t>(kHeaderSize + h.data_len)) return bad();
  if (h.data_len > lo) std::memcpy(out.data() + lo, tail, h.data_len - lo);
  // A write to the file, by anyone, moves its ctime before it changes a
  // byte: the same ctime after our read as before it means nothing wrote
  // while we read, so the bytes are the ones found good when the mark was
  // made at that ctime (or, checked now, may be marked good at it).
  std::int64_t after = 0;
  const bool unchanged = ctime_known && data_ctime(&after) && after == before;
  const bool trusted = marked && unchanged;
  if (!trusted && block_checksum(h, out.first(h.data_len)) != h.checksum) return bad();
  // Re-check after the read (seq_cst, see IndexHeader::cursor): a writer
  // that overwrote the block during our pread has moved the cursor first.
  if (!index_->intact(s.logical)) return Check::Stale;
  if (trusted) {
    marked_hits_.fetch_add(1, std::memory_order_relaxed);
  } else if (unchanged) {
    index_->mark(s, before);
  }
  *len = h.data_len;
  return Check::Good;
}

SpillStore::Check SpillStore::check_block(const IndexSlot& s, std::vector<std::byte>& buf,
                                          BlockKey* key) {
  const auto bad = [&] { return index_->intact(s.logical) ? Check::Bad : Check::Stale; };
  try {
    if (buf.size() < s.alloc_bytes) buf.resize(s.alloc_bytes);
  } catch (const std::bad_alloc&) {
    return Check::Stale;  // cannot tell; not a finding
  }
  const auto phys = static_cast<off_t>(s.logical % index_->capacity());
  const ssize_t got = pread_full(data_fd_, buf.data(), s.alloc_bytes, phys);
  if (got < static_cast<ssize_t>(kHeaderSize)) return bad();
  BlockHeader h;
  std::memcpy(&h, buf.data(), kHeaderSize);
  if (h.magic != kBlockMagic || h.version != kBlockVersion ||
      h.header_size != kHeaderSize || h.nonce != index_->nonce() ||
      h.logical_offset != s.logical || h.data_len > index_->page_size() ||
      block_alloc_bytes(h.data_len) != s.alloc_bytes ||
      got < static_cast<ssize_t>(kHeaderSize + h.data_len))
    return bad();
  if (block_checksum(h, {buf.data() + kHeaderSize, h.data_len}) != h.checksum) return bad();
  if (!index_->intact(s.logical)) return Check::Stale;
  *key = BlockKey{h.id_lo, h.id_hi, h.page};
  return Check::Good;
}

Result<std::size_t> SpillStore::read(const BlockKey& key, std::span<std::byte> out) {
  if (!enabled()) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return make_error(Status::NotFound, "spill: off");
  }
  std::size_t len = 0;
  Check outcome = Check::Stale;
  bool damaged = false;
  index_->probe(key_hash(key), [&](const IndexSlot& s) {
    switch (read_into(s, key, out, &len)) {
      case Check::Good:
        outcome = Check::Good;
        return true;
      case Check::TooSmall:
        outcome = Check::TooSmall;
        return true;
      case Check::Bad:
        checksum_errors_.fetch_add(1, std::memory_order_relaxed);
        damaged = true;
        index_->drop(s);
        return false;
      case Check::Stale:
        index_->drop(s);
        return false;
      case Check::Foreign:
        return false;
    }
    return false;
  });
  if (outcome == Check::Good) {
    hits_.fetch_add(1, std::memory_order_relaxed);
    return len;
  }
  if (outcome == Check::TooSmall)
    return make_error(Status::InvalidArgument, "spill: buffer smaller than the block");
  misses_.fetch_add(1, std::memory_order_relaxed);
  if (damaged) return make_error(Status::ChecksumError, "spill: a damaged copy was dropped");
  return make_error(Status::NotFound, "spill: miss");
}

bool SpillStore::contains(const BlockKey& key) const {
  if (!enabled()) return false;
  return index_->probe(key_hash(key), [](const IndexSlot&) { return true; });
}

void SpillStore::remove(const BlockKey& key) {
  const std::uint64_t hash = key_hash(key);
  IndexSlot s;
  // Each pass removes the first copy; a key rarely has more than one.
  for (int i = 0; i < static_cast<int>(kMaxProbe) && find_exact(hash, key, &s); ++i)
    index_->drop(s);
}

VerifyReport SpillStore::verify() {
  VerifyReport report;
  if (!enabled()) return report;
  std::vector<std::byte> buf;
  index_->for_each_fresh([&](const IndexSlot& s) {
    BlockKey key;
    Check c = check_block(s, buf, &key);
    if (c == Check::Stale) return;  // overwritten meanwhile: not a finding
    ++report.blocks_checked;
    bool ok = c == Check::Good;
    if (ok) {
      // The entry must also sit where its key's hash puts it.
      const std::uint64_t hash = key_hash(key);
      ok = key_tag(hash) == entry::tag(s.entry) && index_->in_window(hash, s.slot);
    }
    if (!ok) {
      ++report.bad_blocks;
      checksum_errors_.fetch_add(1, std::memory_order_relaxed);
      index_->drop(s);
    }
  });
  return report;
}

SpillStats SpillStore::stats() const {
  SpillStats st;
  st.hits = hits_.load(std::memory_order_relaxed);
  st.misses = misses_.load(std::memory_order_relaxed);
  st.checksum_errors = checksum_errors_.load(std::memory_order_relaxed);
  st.writes = writes_.load(std::memory_order_relaxed);
  st.dropped = dropped_.load(std::memory_order_relaxed);
  st.duplicates = duplicates_.load(std::memory_order_relaxed);
  st.marked_hits = marked_hits_.load(std::memory_order_relaxed);
  st.used_bytes = index_->used_bytes();
  st.capacity = index_->capacity();
  st.disabled = !enabled();
  return st;
}

}  // namespace objcache::spill
