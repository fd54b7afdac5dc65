// SPDX-License-Identifier: Apache-2.0
#include "meta/range_listing.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

namespace objcache::meta {

namespace {

// Split points made at once from one page; a range past the last of them
// is split again when its own pages come back truncated.
constexpr std::size_t kMaxPointsPerSplit = 64;

// Listing threads running in this process, over every listing at once:
// list-ahead lists many directories in parallel, and each of them must
// not bring its own list_concurrency of threads.
std::atomic<int> g_helpers{0};

// A range of keys (lo, hi]: lo "" = from the first key, hi "" = to the last.
struct Range {
  std::string lo;
  std::string hi;
  bool first = false;  // the whole listing's first range
};

bool past(std::string_view entry, std::string_view hi) { return !hi.empty() && entry > hi; }

class Listing {
 public:
  Listing(ObjectStore& store, const std::string& prefix, int concurrency, const std::function<void()>& on_request)
      : store_(store), prefix_(prefix), concurrency_(std::max(1, concurrency)), on_request_(on_request) {}

  Result<ListedPrefix> run() {
    queue_.push_back(Range{"", "", true});
    outstanding_ = 1;
    work();  // the calling thread is a worker too, and starts the others when a split gives them work
    for (std::thread& t : threads_) t.join();
    if (error_) return *error_;
    out_.requests = requests_;
    return std::move(out_);
  }

 private:
  // Takes ranges until none is left (or the listing failed).
  void work(bool started = false) {
    if (started) {
      std::lock_guard<std::mutex> g(mu_);
      --starting_;
    }
    for (;;) {
      Range r;
      {
        std::unique_lock<std::mutex> g(mu_);
        ++idle_;
        cv_.wait(g, [&] { return !queue_.empty() || outstanding_ == 0 || error_; });
        --idle_;
        if (queue_.empty() || error_) return;
        r = std::move(queue_.front());
        queue_.pop_front();
      }
      list_range(r);
      {
        std::lock_guard<std::mutex> g(mu_);
        --outstanding_;
      }
      cv_.notify_all();
    }
  }

  void list_range(Range r) {
    ListRequest req;
    req.prefix = prefix_;
    req.delimiter = "/";
    req.start_after = r.lo;
    int pages = 0;
    for (;;) {
      {
        std::lock_guard<std::mutex> g(mu_);
        if (error_) return;
        ++requests_;
      }
      if (on_request_) on_request_();
      auto page = store_.list(req);
      if (!page) return fail(page.error());
      ++pages;
      bool beyond = false;
      std::vector<ObjectInfo> objects;
      std::vector<std::string> prefixes;
      for (ObjectInfo& o : page->objects) {
        if (past(o.key, r.hi)) {
          beyond = true;
        } else {
          objects.push_back(std::move(o));
        }
      }
      for (std::string& p : page->common_prefixes) {
        if (past(p, r.hi)) {
          beyond = true;
        } else {
          prefixes.push_back(std::move(p));
        }
      }
      const bool more = page->truncated && !page->next_continuation_token.empty() && !beyond;
      if (more) maybe_split(r, pages, objects, prefixes);
      keep(std::move(objects), std::move(prefixes));
      if (!more) return;
      req.continuation_token = page->next_continuation_token;
    }
  }

  // Cuts what lies after this page in r into ranges for other workers;
  // r keeps the lowest. The whole listing waits for its second full page
  // first (a directory of 1,001 to 2,000 entries lists as before, with no
  // guessed ranges); a range split off it splits again after one page.
  void maybe_split(Range& r, int pages, const std::vector<ObjectInfo>& objects,
                   const std::vector<std::string>& prefixes) {
    if (concurrency_ < 2 || (r.first && pages < 2)) return;
    std::vector<std::string_view> names;
    names.reserve(objects.size() + prefixes.size());
    for (const ObjectInfo& o : objects) names.push_back(o.key);
    for (const std::string& p : prefixes) names.push_back(p);
    if (names.empty()) return;
    {
      std::lock_guard<std::mutex> g(mu_);
      // Only when some worker would take the new ranges soon.
      const bool room = static_cast<int>(threads_.size()) + 1 < concurrency_;
      if (!room && queue_.size() >= static_cast<std::size_t>(idle_ + starting_)) return;
    }
    const auto [lo_it, hi_it] = std::minmax_element(names.begin(), names.end());
    std::vector<std::string> points = split_points(prefix_, *lo_it, *hi_it, names, r.hi, kMaxPointsPerSplit);
    if (points.empty()) return;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (std::size_t i = 0; i < points.size(); ++i) {
        queue_.push_back(Range{points[i], i + 1 < points.size() ? points[i + 1] : r.hi, false});
      }
      outstanding_ += points.size();
      r.hi = points.front();
      r.first = false;
      start_workers();
    }
    cv_.notify_all();
  }

  // Under mu_: more threads while there is queued work and room for them.
  void start_workers() {
    while (static_cast<int>(threads_.size()) + 1 < concurrency_ &&
           queue_.size() > static_cast<std::size_t>(idle_ + starting_)) {
      if (g_helpers.fetch_add(1) + 1 >= concurrency_) {
        g_helpers.fetch_sub(1);
        return;  // the process lists enough already: the workers there are do it
      }
      try {
        threads_.emplace_back([this] {
          work(true);
          g_helpers.fetch_sub(1);
        });
      } catch (const std::system_error&) {
        g_helpers.fetch_sub(1);
        return;  // no more threads: the ones there are do the work
      }
      ++starting_;
    }
  }

  void keep(std::vector<ObjectInfo> objects, std::vector<std::string> prefixes) {
    std::lock_guard<std::mutex> g(mu_);
    for (ObjectInfo& o : objects) out_.objects.push_back(std::move(o));
    for (std::string& p : prefixes) out_.common_prefixes.push_back(std::move(p));
  }

  void fail(const Error& e) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!error_) error_ = e;
    }
    cv_.notify_all();
  }

  ObjectStore& store_;
  const std::string& prefix_;
  const int concurrency_;
  const std::function<void()>& on_request_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Range> queue_;
  std::size_t outstanding_ = 0;  // ranges queued or being listed
  int idle_ = 0;                 // workers waiting for a range
  int starting_ = 0;             // threads started that have not looked at the queue yet
  std::vector<std::thread> threads_;
  std::uint64_t requests_ = 0;
  std::optional<Error> error_;
  ListedPrefix out_;
};

}  // namespace

namespace {

// Character classes, so that a position seen holding digits is split at
// digits, not at every letter the names use elsewhere.
std::uint8_t class_of(unsigned char c) {
  if (c >= '0' && c <= '9') return 1;
  if (c >= 'a' && c <= 'z') return 2;
  if (c >= 'A' && c <= 'Z') return 4;
  return 8;
}

}  // namespace

std::vector<std::string> split_points(std::string_view prefix, std::string_view first, std::string_view last,
                                      const std::vector<std::string_view>& names, std::string_view hi,
                                      std::size_t max_points) {
  std::vector<std::string> out;
  if (!last.starts_with(prefix) || !first.starts_with(prefix) || first > last) return out;
  // The printable ASCII bytes the names use (never '/'), and the classes
  // of those seen at each position.
  bool used[128] = {};
  std::vector<std::uint8_t> classes(last.size() + 1 - prefix.size(), 0);
  for (std::string_view n : names) {
    for (std::size_t k = std::min(prefix.size(), n.size()); k < n.size(); ++k) {
      const auto c = static_cast<unsigned char>(n[k]);
      if (c < 0x21 || c > 0x7e || c == '/') continue;
      used[c] = true;
      if (k - prefix.size() < classes.size()) classes[k - prefix.size()] |= class_of(c);
    }
  }
  std::size_t j = prefix.size();
  while (j < first.size() && j < last.size() && first[j] == last[j]) ++j;
  // From the position where the page's names vary up to the prefix: a
  // name that agrees with last before i and has a greater byte at i.
  for (std::size_t i = j + 1; i-- > prefix.size();) {
    int cur = -1;  // at the end of last, every byte is greater
    if (i < last.size()) {
      const auto b = static_cast<unsigned char>(last[i]);
      if ((b & 0xC0) == 0x80) continue;  // would cut a UTF-8 sequence
      cur = b;
    }
    const std::uint8_t mask = i < last.size() && classes[i - prefix.size()] != 0 ? classes[i - prefix.size()] : 0xff;
    for (int c = cur + 1; c < 128; ++c) {
      if (!used[c] || (class_of(static_cast<unsigned char>(c)) & mask) == 0) continue;
      std::string point(last.substr(0, i));
      point += static_cast<char>(c);
      if (!hi.empty() && point >= hi) return out;  // every later point is greater still
      out.push_back(std::move(point));
      if (out.size() >= max_points) return out;
    }
  }
  return out;
}

Result<ListedPrefix> list_prefix(ObjectStore& store, const std::string& prefix, int concurrency,
                                 const std::function<void()>& on_request) {
  return Listing(store, prefix, concurrency, on_request).run();
}

}  // namespace objcache::meta
