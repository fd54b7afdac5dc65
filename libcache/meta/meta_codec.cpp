// SPDX-License-Identifier: Apache-2.0
#include "meta/meta_codec.h"

#include <algorithm>
#include <cstring>

#include "meta/node_ids.h"
#include "objcache/object_store.h"

namespace objcache::meta {

namespace {

constexpr std::uint32_t kListingMagic = 0x4c43434f;  // "OCCL"
constexpr std::uint32_t kStatMagic = 0x5343434f;     // "OCCS"

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  // resize + memcpy rather than insert(first, last): GCC 12 under
  // -fsanitize=thread warns (falsely) about insert's inlined copy.
  template <typename T>
  void put(T v) {
    append(&v, sizeof v);
  }
  void bytes(const std::string& s) { append(s.data(), s.size()); }

 private:
  void append(const void* p, std::size_t n) {
    if (n == 0) return;
    const std::size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }

 public:

 private:
  std::vector<std::byte>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  template <typename T>
  bool get(T& v) {
    if (in_.size() - pos_ < sizeof v) return false;
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return true;
  }
  bool bytes(std::string& s, std::size_t n) {
    if (in_.size() - pos_ < n) return false;
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

Error corrupt(const char* what) { return make_error(Status::ChecksumError, what); }

bool usable_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('\0') == std::string_view::npos;
}

// One path component: what make_listing keeps and readdir may return.
bool usable_entry_name(std::string_view name) { return usable_name(name) && name.find('/') == std::string_view::npos; }

}  // namespace

std::vector<std::byte> encode_listing(const Listing& entries) {
  std::vector<std::byte> out;
  Writer w(out);
  w.put(kListingMagic);
  w.put(static_cast<std::uint32_t>(entries.size()));
  for (const DirEntry& e : entries) {
    w.put(static_cast<std::uint8_t>(e.kind));
    w.put(static_cast<std::uint8_t>(std::min(e.etag.size(), kMaxEtag)));
    w.put(static_cast<std::uint16_t>(e.name.size()));
    w.put(e.size);
    w.put(e.mtime);
    w.put(e.ino);
    w.bytes(e.etag.substr(0, kMaxEtag));
    w.bytes(e.name);
  }
  return out;
}

Result<Listing> decode_listing(std::span<const std::byte> blob) {
  Reader r(blob);
  std::uint32_t magic = 0, count = 0;
  if (!r.get(magic) || magic != kListingMagic || !r.get(count)) return corrupt("listing: bad header");
  if (count > blob.size() / 27) return corrupt("listing: count past the blob");
  Listing out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    DirEntry e;
    std::uint8_t kind = 0, etag_len = 0;
    std::uint16_t name_len = 0;
    // An ETag longer than kMaxEtag is never written (encode_listing
    // truncates), so one in a blob means damage.
    if (!r.get(kind) || !r.get(etag_len) || etag_len > kMaxEtag || !r.get(name_len) || !r.get(e.size) ||
        !r.get(e.mtime) || !r.get(e.ino) || !r.bytes(e.etag, etag_len) ||
        !r.bytes(e.name, name_len) || kind > 1 || !usable_entry_name(e.name)) {
      return corrupt("listing: bad entry");
    }
    e.kind = static_cast<NodeKind>(kind);
    if (!out.empty() && !(out.back().name < e.name)) return corrupt("listing: not sorted");
    out.push_back(std::move(e));
  }
  if (!r.done()) return corrupt("listing: trailing bytes");
  return out;
}

void encode_listing_record(const ListingRecord& rec, std::span<std::byte> out) {
  std::memcpy(out.data(), &rec.length, 8);
  std::memcpy(out.data() + 8, &rec.nonce, 8);
  std::memcpy(out.data() + 16, &rec.made_ms, 8);
}

Result<ListingRecord> decode_listing_record(std::span<const std::byte> in) {
  if (in.size() != kListingRecordSize) return corrupt("listing record: bad size");
  ListingRecord rec;
  std::memcpy(&rec.length, in.data(), 8);
  std::memcpy(&rec.nonce, in.data() + 8, 8);
  std::memcpy(&rec.made_ms, in.data() + 16, 8);
  if (rec.length < 8 || rec.nonce == 0 || rec.made_ms <= 0) return corrupt("listing record: bad values");
  return rec;
}

Result<void> encode_stat_record(const StatRecord& rec, std::span<std::byte> out) {
  if (out.size() != kStatRecordSize || rec.etag.size() > kMaxEtag) {
    return make_error(Status::InvalidArgument, "stat record: ETag too long");
  }
  std::vector<std::byte> buf;
  Writer w(buf);
  w.put(kStatMagic);
  w.put(static_cast<std::uint8_t>(rec.kind));
  w.put(static_cast<std::uint8_t>(rec.etag.size()));
  w.put(rec.size);
  w.put(rec.mtime);
  w.put(rec.made_ms);
  w.bytes(rec.etag);
  std::fill(out.begin(), out.end(), std::byte{0});
  std::memcpy(out.data(), buf.data(), buf.size());
  return {};
}

Result<StatRecord> decode_stat_record(std::span<const std::byte> in) {
  if (in.size() != kStatRecordSize) return corrupt("stat record: bad size");
  Reader r(in);
  StatRecord rec;
  std::uint32_t magic = 0;
  std::uint8_t kind = 0, etag_len = 0;
  if (!r.get(magic) || magic != kStatMagic || !r.get(kind) || kind > 2 || !r.get(etag_len) ||
      etag_len > kMaxEtag || !r.get(rec.size) || !r.get(rec.mtime) || !r.get(rec.made_ms) ||
      rec.made_ms <= 0 || !r.bytes(rec.etag, etag_len)) {
    return corrupt("stat record: bad contents");
  }
  rec.kind = static_cast<RecordKind>(kind);
  return rec;
}

Listing make_listing(int mount, const std::string& prefix, std::vector<ObjectInfo> objects,
                     const std::vector<std::string>& common_prefixes) {
  Listing out;
  out.reserve(objects.size() + common_prefixes.size());
  for (const std::string& p : common_prefixes) {
    if (p.size() <= prefix.size() || p.compare(0, prefix.size(), prefix) != 0 || p.back() != '/') continue;
    std::string name = p.substr(prefix.size(), p.size() - prefix.size() - 1);
    if (!usable_entry_name(name)) continue;
    DirEntry e;
    e.name = std::move(name);
    e.kind = NodeKind::Directory;
    e.ino = ino_of(mount, p);
    out.push_back(std::move(e));
  }
  for (ObjectInfo& o : objects) {
    if (o.key.size() <= prefix.size() || o.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::string name = o.key.substr(prefix.size());
    if (!usable_entry_name(name)) continue;
    DirEntry e;
    e.name = std::move(name);
    e.kind = NodeKind::File;
    e.size = o.size;
    e.mtime = o.mtime;
    e.etag = o.etag.size() <= kMaxEtag ? std::move(o.etag) : std::string();
    e.ino = ino_of(mount, o.key);
    out.push_back(std::move(e));
  }
  // Directories sort before files of the same name, so unique() keeps them.
  std::stable_sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) {
    if (a.name != b.name) return a.name < b.name;
    return a.kind == NodeKind::Directory && b.kind != NodeKind::Directory;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const DirEntry& a, const DirEntry& b) { return a.name == b.name; }),
            out.end());
  return out;
}

}  // namespace objcache::meta
