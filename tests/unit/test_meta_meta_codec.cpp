// SPDX-License-Identifier: Apache-2.0
// The metadata formats the Vfs keeps in shared memory: a listing or stat
// record round-trips, and damaged bytes are an error, never a crash; and
// how a delimited LIST becomes a directory.
#include <doctest/doctest.h>

#include <cstring>

#include "meta/meta_codec.h"
#include "meta/node_ids.h"

using namespace objcache;
using namespace objcache::meta;

namespace {

ObjectInfo obj(std::string key, std::uint64_t size, std::string etag = "e") {
  ObjectInfo o;
  o.key = std::move(key);
  o.size = size;
  o.etag = std::move(etag);
  o.mtime = 1700000000;
  return o;
}

}  // namespace

TEST_CASE("make_listing: names relative to the prefix, directories shadow files, odd names dropped") {
  Listing l = make_listing(0, "ds/",
                           {obj("ds/b.txt", 3), obj("ds/a", 1), obj("ds/", 0), obj("ds/.", 0),
                            obj("ds/x/deeper", 9), obj("other/z", 1)},
                           {"ds/a/", "ds/c/", "ds//", "ds/../"});
  REQUIRE(l.size() == 3);
  CHECK(l[0].name == "a");
  CHECK(l[0].kind == NodeKind::Directory);  // "a" is a file and a prefix: the directory wins
  CHECK(l[1].name == "b.txt");
  CHECK(l[1].kind == NodeKind::File);
  CHECK(l[1].size == 3);
  CHECK(l[1].etag == "e");
  CHECK(l[1].ino == ino_of(0, "ds/b.txt"));
  CHECK(l[2].name == "c");
  CHECK(l[2].ino == ino_of(0, "ds/c/"));
  CHECK(ino_of(0, "ds/c/") != ino_of(1, "ds/c/"));
}

TEST_CASE("listing blobs round-trip; truncated or altered blobs are errors") {
  Listing l = make_listing(2, "", {obj("f1", 10, "etag-1"), obj("f2 ü", 0, "")}, {"d/"});
  auto blob = encode_listing(l);
  auto back = decode_listing(blob);
  REQUIRE(back);
  REQUIRE(back->size() == 3);
  for (std::size_t i = 0; i < l.size(); ++i) {
    CHECK((*back)[i].name == l[i].name);
    CHECK((*back)[i].kind == l[i].kind);
    CHECK((*back)[i].size == l[i].size);
    CHECK((*back)[i].etag == l[i].etag);
    CHECK((*back)[i].ino == l[i].ino);
  }
  for (std::size_t cut = 0; cut < blob.size(); ++cut) {
    CHECK_FALSE(decode_listing(std::span(blob).first(cut)));
  }
  auto bad = blob;
  bad[0] ^= std::byte{1};
  CHECK_FALSE(decode_listing(bad));
  CHECK(decode_listing(encode_listing({}))->empty());
}

TEST_CASE("a listing blob with an ETag past kMaxEtag or a name holding '/' is damage, not an entry") {
  // Found by fuzz_meta_codec: an ETag of 201..255 bytes decoded, and then
  // encoded truncated to kMaxEtag, so the blob did not round-trip.
  DirEntry e;
  e.name = "n";
  e.kind = NodeKind::File;
  e.etag = std::string(kMaxEtag, 'x');
  auto blob = encode_listing({e});
  REQUIRE(decode_listing(blob));
  const std::size_t etag_len_at = 8 + 1;
  const std::size_t etag_at = 8 + 4 + sizeof e.size + sizeof e.mtime + sizeof e.ino;
  REQUIRE(static_cast<std::size_t>(blob[etag_len_at]) == kMaxEtag);
  blob[etag_len_at] = static_cast<std::byte>(kMaxEtag + 1);
  blob.insert(blob.begin() + static_cast<std::ptrdiff_t>(etag_at), std::byte{'x'});
  CHECK_FALSE(decode_listing(blob));

  DirEntry slash;
  slash.name = "a/b";
  slash.kind = NodeKind::File;
  CHECK_FALSE(decode_listing(encode_listing({slash})));
}

TEST_CASE("stat and listing records round-trip and reject damage") {
  std::byte buf[kStatRecordSize];
  StatRecord r;
  r.kind = RecordKind::File;
  r.size = 123456789;
  r.mtime = -5;
  r.etag = "0123456789abcdef";
  r.made_ms = 1764623335000;
  REQUIRE(encode_stat_record(r, buf));
  auto back = decode_stat_record(buf);
  REQUIRE(back);
  CHECK(back->kind == RecordKind::File);
  CHECK(back->size == r.size);
  CHECK(back->mtime == r.mtime);
  CHECK(back->etag == r.etag);
  CHECK(back->made_ms == r.made_ms);
  r.etag.assign(kMaxEtag + 1, 'x');
  CHECK_FALSE(encode_stat_record(r, buf));
  std::memset(buf, 0, sizeof buf);
  CHECK_FALSE(decode_stat_record(buf));

  std::byte rec[kListingRecordSize];
  encode_listing_record({4096, 77, 1764623335000}, rec);
  auto lr = decode_listing_record(rec);
  REQUIRE(lr);
  CHECK(lr->length == 4096);
  CHECK(lr->nonce == 77);
  CHECK(lr->made_ms == 1764623335000);
  std::memset(rec, 0, sizeof rec);
  CHECK_FALSE(decode_listing_record(rec));
}
