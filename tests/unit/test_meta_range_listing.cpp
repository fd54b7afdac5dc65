// SPDX-License-Identifier: Apache-2.0
// Listing a large prefix as parallel key ranges: every key once, none
// lost, whatever the names, against an in-memory store with S3's
// ListObjectsV2 rules (prefix, "/" delimiter, StartAfter, continuation).
#include "meta/range_listing.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace objcache;
using namespace objcache::meta;

namespace {

// Keys in order, pages of page_keys entries (a server may return fewer
// than max_keys). The continuation token is the last entry returned.
class ListStore final : public ObjectStore {
 public:
  explicit ListStore(std::set<std::string> keys, int page_keys = 1000) : keys_(std::move(keys)), page_(page_keys) {}

  Result<ListPage> list(const ListRequest& req) override {
    calls_.fetch_add(1);
    if (fail_after_ >= 0 && calls_.load() > fail_after_) return make_error(Status::IoError, "store broke");
    {
      std::lock_guard<std::mutex> g(mu_);
      start_afters_.push_back(req.start_after);
      in_flight_ += 1;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    // Let other workers start theirs while this one is "on the wire".
    std::this_thread::yield();
    std::string after = req.continuation_token.empty() ? req.start_after : req.continuation_token;
    ListPage page;
    std::string last_prefix;
    int n = 0;
    for (auto it = keys_.upper_bound(after); it != keys_.end(); ++it) {
      const std::string& k = *it;
      if (!k.starts_with(req.prefix)) {
        if (k > req.prefix) break;
        continue;
      }
      std::string entry = k;
      bool is_prefix = false;
      if (!req.delimiter.empty()) {
        auto slash = k.find('/', req.prefix.size());
        if (slash != std::string::npos) {
          entry = k.substr(0, slash + 1);
          is_prefix = true;
        }
      }
      if (is_prefix && entry == last_prefix) continue;
      if (is_prefix && entry <= after) continue;  // rolled up before
      if (n == std::min(page_, req.max_keys)) {
        page.truncated = true;
        break;
      }
      ++n;
      if (is_prefix) {
        last_prefix = entry;
        page.common_prefixes.push_back(entry);
        page.next_continuation_token = entry + "\xff";  // past every key under it
      } else {
        ObjectInfo o;
        o.key = entry;
        o.size = entry.size();
        page.objects.push_back(o);
        page.next_continuation_token = entry;
      }
    }
    if (!page.truncated) page.next_continuation_token.clear();
    std::lock_guard<std::mutex> g(mu_);
    in_flight_ -= 1;
    return page;
  }

  Result<ObjectInfo> head(std::string_view) override { return make_error(Status::Unsupported, "head"); }
  Result<GetResult> get(const GetRequest&, std::span<std::byte>) override {
    return make_error(Status::Unsupported, "get");
  }
  void get_async(const GetRequest&, std::span<std::byte>, GetCallback done) override {
    done(make_error(Status::Unsupported, "get"));
  }
  Result<std::string> put(std::string_view, std::span<const std::byte>) override {
    return make_error(Status::Unsupported, "put");
  }
  Result<std::string> create_multipart(std::string_view) override { return make_error(Status::Unsupported, "mp"); }
  Result<std::string> upload_part(std::string_view, std::string_view, int, std::span<const std::byte>) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<std::string> complete_multipart(std::string_view, std::string_view,
                                         const std::vector<CompletedPart>&) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<void> abort_multipart(std::string_view, std::string_view) override {
    return make_error(Status::Unsupported, "mp");
  }
  Result<void> remove(std::string_view) override { return make_error(Status::Unsupported, "rm"); }
  Result<std::string> copy(std::string_view, std::string_view) override {
    return make_error(Status::Unsupported, "copy");
  }

  int calls() const { return calls_.load(); }
  int max_in_flight() {
    std::lock_guard<std::mutex> g(mu_);
    return max_in_flight_;
  }
  std::atomic<int> fail_after_{-1};

 private:
  std::set<std::string> keys_;
  int page_;
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::vector<std::string> start_afters_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
};

// What one sequential delimited listing gives: the names, sorted.
std::vector<std::string> expected(const std::set<std::string>& keys, const std::string& prefix) {
  std::set<std::string> out;
  for (const std::string& k : keys) {
    if (!k.starts_with(prefix)) continue;
    auto slash = k.find('/', prefix.size());
    out.insert(slash == std::string::npos ? k : k.substr(0, slash + 1));
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> got(const ListedPrefix& l) {
  std::vector<std::string> out;
  for (const ObjectInfo& o : l.objects) out.push_back(o.key);
  for (const std::string& p : l.common_prefixes) out.push_back(p);
  std::sort(out.begin(), out.end());
  return out;
}

std::string numbered(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "img_%08d.jpg", i);
  return buf;
}

}  // namespace

TEST_CASE("split points lie after the page, below the bound, in order, and never hold '/'") {
  std::vector<std::string> page;
  for (int i = 0; i < 1000; ++i) page.push_back("d/" + numbered(i));
  std::vector<std::string_view> names(page.begin(), page.end());
  auto pts = split_points("d/", page.front(), page.back(), names, "", 64);
  REQUIRE(!pts.empty());
  CHECK(pts.size() <= 64);
  CHECK(std::is_sorted(pts.begin(), pts.end()));
  CHECK(std::adjacent_find(pts.begin(), pts.end()) == pts.end());
  for (const std::string& p : pts) {
    CHECK(p > page.back());
    CHECK(p.starts_with("d/"));
    CHECK(p.find('/', 2) == std::string::npos);
  }
  // Where the next thousands of keys begin: img_00001000 lies above "d/img_00001".
  CHECK(std::find(pts.begin(), pts.end(), "d/img_00001") != pts.end());
  CHECK(std::find(pts.begin(), pts.end(), "d/img_0001") != pts.end());

  auto bounded = split_points("d/", page.front(), page.back(), names, "d/img_00003", 64);
  for (const std::string& p : bounded) CHECK(p < "d/img_00003");
  CHECK(std::find(bounded.begin(), bounded.end(), "d/img_00002") != bounded.end());

  // A UTF-8 name is never cut inside a sequence.
  std::vector<std::string> utf{"caf\xC3\xA9-1", "caf\xC3\xA9-2"};
  std::vector<std::string_view> un(utf.begin(), utf.end());
  for (const std::string& p : split_points("", utf[0], utf[1], un, "", 64)) {
    CHECK(!(p.size() == 5 && p.starts_with("caf\xC3")));  // "caf\xC3" + a byte would split the é
  }
  CHECK(split_points("x/", "y", "z", un, "", 64).empty());  // names outside the prefix: no guess
}

TEST_CASE("a flat prefix lists every key exactly once, in parallel") {
  std::set<std::string> keys;
  for (int i = 0; i < 20000; ++i) keys.insert("train/" + numbered(i));
  keys.insert("other/x");
  keys.insert("trainz");
  ListStore store(keys, 100);
  std::atomic<int> counted{0};
  auto l = list_prefix(store, "train/", 16, [&] { counted.fetch_add(1); });
  REQUIRE(l.ok());
  CHECK(got(*l) == expected(keys, "train/"));
  CHECK(l->objects.size() == 20000);
  CHECK(counted.load() == store.calls());
  CHECK(l->requests == static_cast<std::uint64_t>(store.calls()));
  // 200 pages: split ranges cost some empty LISTs, but not many more than the pages.
  CHECK(store.calls() >= 200);
  CHECK(store.calls() < 600);
  MESSAGE("20,000 keys in pages of 100: " << store.calls() << " LISTs, " << store.max_in_flight() << " at once");
}

TEST_CASE("random names, common prefixes and odd bytes: the same entries as one sequential listing") {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789abcdefXYZ-_.~ /";
  for (int round = 0; round < 20; ++round) {
    std::set<std::string> keys;
    const int n = 200 + static_cast<int>(rng() % 3000);
    for (int i = 0; i < n; ++i) {
      std::string k = "p/";
      const int len = 1 + static_cast<int>(rng() % 12);
      for (int c = 0; c < len; ++c) k += alphabet[rng() % alphabet.size()];
      if (rng() % 50 == 0) k += "\xC3\xA9";  // UTF-8
      keys.insert(k);
    }
    const int page = 1 + static_cast<int>(rng() % 60);
    const int conc = 1 + static_cast<int>(rng() % 20);
    ListStore store(keys, page);
    auto l = list_prefix(store, "p/", conc, nullptr);
    REQUIRE(l.ok());
    CHECK_MESSAGE(got(*l) == expected(keys, "p/"), "round " << round << ": " << n << " keys, pages of " << page
                                                           << ", concurrency " << conc);
  }
}

TEST_CASE("a small directory is one LIST; concurrency 1 is the plain sequential listing") {
  std::set<std::string> keys;
  for (int i = 0; i < 999; ++i) keys.insert("a/" + numbered(i));
  ListStore small(keys);
  auto l = list_prefix(small, "a/", 16, nullptr);
  REQUIRE(l.ok());
  CHECK(small.calls() == 1);
  CHECK(l->objects.size() == 999);

  for (int i = 999; i < 1500; ++i) keys.insert("a/" + numbered(i));
  ListStore two(keys);
  REQUIRE(list_prefix(two, "a/", 16, nullptr).ok());
  CHECK(two.calls() == 2);  // 1,001 to 2,000 entries: two pages, no guessed ranges

  for (int i = 1500; i < 5000; ++i) keys.insert("a/" + numbered(i));
  ListStore seq(keys);
  auto s = list_prefix(seq, "a/", 1, nullptr);
  REQUIRE(s.ok());
  CHECK(seq.calls() == 5);
  CHECK(seq.max_in_flight() == 1);
  CHECK(got(*s) == expected(keys, "a/"));
}

TEST_CASE("a failed LIST fails the whole listing, and every worker stops") {
  std::set<std::string> keys;
  for (int i = 0; i < 20000; ++i) keys.insert("f/" + numbered(i));
  ListStore store(keys, 100);
  store.fail_after_ = 10;
  auto l = list_prefix(store, "f/", 16, nullptr);
  REQUIRE(!l.ok());
  CHECK(l.status() == Status::IoError);
  CHECK(store.calls() < 40);  // the others saw the error and sent no more
}
