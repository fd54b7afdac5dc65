// SPDX-License-Identifier: Apache-2.0
// Fetcher: how pages get from the store into the page cache.
//   - Demand reads fetch the page they miss (one GET node-wide: the page
//     cache's claim single-flights it; a fetch already in flight, from any
//     process, is joined rather than repeated).
//   - A small object (up to kSmallObjectMax) is one GET whatever its page
//     count; a large one is fetched as ranged GETs of one page each.
//   - Readahead and background prefetch are queued here and run on one
//     dispatcher thread per process that issues asynchronous GETs, taking
//     slots of the node-wide fill::Gate (prefetch_concurrency in flight),
//     readahead before prefetch. Prefetch only fills free room: it never
//     evicts what is cached.
//   - A queued page that another live process is filling is looked at
//     again every kBusyRecheck until it is cached or ours to fetch (its
//     filler failed, died or overran the fill deadline): never counted as
//     done because someone else was on it.
//   - Background GETs that fail as if the store were away (Transient,
//     Throttled, Timeout) wait per mount; one is sent again as a probe
//     after a backoff (kRetryFirst, doubling to kRetryMax), or as soon as
//     the store answers again (ObjectStore::reachable, or any GET of ours
//     that succeeds), and then they all go back in the queues.
// Thread-safe. After fork the child starts empty and makes its own thread
// on first use; the parent's queue and GETs stay the parent's. At process
// exit (an exit_hooks Quiesce hook added when the first dispatcher starts,
// after its store exists, so it runs before libcurl's and OpenSSL's
// cleanups, and after the Flush hooks that upload staged files) every
// fetcher stops its dispatcher, releases the claims of its GETs in flight
// so other processes fetch those pages at once, and shuts its stores down.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cache/page_fills.h"
#include "fill/gate.h"
#include "objcache/object_store.h"
#include "objcache/page_cache.h"

namespace objcache::fetch {

// One version of an object, as the fetcher needs it.
struct FetchTarget {
  int mount = -1;
  std::string key;
  std::string etag;  // reads are pinned to it (If-Match)
  std::uint64_t size = 0;
  ObjectId id;
};

inline constexpr std::uint64_t kSmallObjectMax = 4ull << 20;  // one GET up to this size


class Fetcher {
 public:
  using StoreOf = std::function<Result<ObjectStore*>(int mount)>;

  // shutdown_stores stops the stores' background work (ObjectStore::shutdown).
  Fetcher(PageCache& cache, StoreOf store_of, std::function<void()> shutdown_stores, int concurrency);
  ~Fetcher();
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  std::uint64_t page_size() const { return cache_.page_size(); }
  std::uint32_t page_count(const FetchTarget& t) const;
  PageRef page_ref(const FetchTarget& t, std::uint32_t page) const;

  // Copies bytes [in_page, in_page + out.size()) of the page into out,
  // fetching it on a miss (see above). As PageCache::read.
  Result<PageRead> read_page(const FetchTarget& t, std::uint32_t page, std::uint32_t in_page,
                             std::span<std::byte> out);

  // Queues pages [first, first + count) of t for the background. p is
  // Readahead (may evict, like a read) or Prefetch (free room only).
  // False when the queue is full (kMaxQueuedJobs): nothing was queued.
  bool enqueue(fill::Priority p, std::shared_ptr<const FetchTarget> t, std::uint32_t first,
               std::uint32_t count);
  static constexpr std::size_t kMaxQueuedJobs = 16384;
  // Runs fn on one of up to kTaskThreads background threads (listings
  // fetched ahead of the program). Dropped when stopping or when
  // kMaxQueuedJobs tasks wait already; false then.
  // mount: the store fn will use (made first, see the exit handler).
  bool run_task(int mount, std::function<void()> fn);
  static constexpr int kTaskThreads = 32;

  // Waits until this process's queues are empty and its GETs done.
  void drain();
  // Drops what is queued (GETs in flight finish).
  void cancel();
  FetchProgress progress();

  // What the exit handler does, for each live fetcher.
  void quiesce_for_exit();

  // Held across fork by the owner's pthread_atfork handlers.
  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    std::shared_ptr<const FetchTarget> target;
    std::uint32_t first = 0;
    std::uint32_t count = 0;
    fill::Priority priority = fill::Priority::Prefetch;
    bool probe = false;  // a retry that finds out whether the store is back
    bool retry = false;  // its pages failed before (counted in failed_pages)
  };
  struct Unit {
    std::shared_ptr<const FetchTarget> target;
    std::uint32_t first = 0;
    std::uint32_t count = 0;  // pages; more than one only for a small object
    fill::Priority priority = fill::Priority::Prefetch;
    bool probe = false;
    bool retry = false;
  };
  // Pages another process was filling, to look at again at `due`.
  struct Deferred {
    Job job;
    Clock::time_point due;
  };
  // The failed background GETs of one mount, waiting for its store.
  struct Retries {
    std::deque<Job> jobs;
    ObjectStore* store = nullptr;     // for reachable(); the mount's store
    Clock::time_point next{};         // when the next probe may go
    std::chrono::milliseconds backoff{0};
    bool probing = false;             // a probe is queued or in flight
    bool saw_unreachable = false;     // the breaker was open at the last failure
  };
  static constexpr std::chrono::milliseconds kBusyRecheck{20};
  static constexpr std::chrono::milliseconds kRetryFirst{500};
  static constexpr std::chrono::milliseconds kRetryMax{5000};
  // How often a mount whose store was unreachable is asked reachable().
  static constexpr std::chrono::milliseconds kReachableCheck{200};

  // The GETs in flight of one unit; abandoned at exit, after which its
  // callback touches nothing.
  struct InFlight {
    std::vector<cache::PendingFill> fills;
    bool abandoned = false;  // guarded by mu_
  };

  void adopt_after_fork();  // with mu_ held
  void run();
  void run_tasks();
  bool take_unit(Unit& u);  // with mu_ held
  void run_unit(const Unit& u);
  void unit_done(std::uint64_t bytes, std::uint64_t failed);
  // With mu_ held: what the dispatcher does next, and when it must wake.
  void promote_due(Clock::time_point now);
  Clock::time_point next_wake(Clock::time_point now) const;
  // With mu_ held: a unit's GET ended; failures that look like an outage
  // wait for the store, a success brings back what waited.
  void record_outcome(const Unit& u, ObjectStore* store, const Result<std::size_t>& got);
  void requeue_retries(int mount);
  // u was to probe the store but sent nothing (its pages were cached).
  void probe_not_sent(const Unit& u);
  // The store of mount answered a GET (demand or background).
  void store_answered(int mount);
  Result<std::size_t> get_whole(const FetchTarget& t, std::uint32_t page, std::span<std::byte> dst);
  void observe(const Result<GetResult>& r, Clock::time_point sent);

  PageCache& cache_;
  StoreOf store_of_;
  std::function<void()> shutdown_stores_;
  const int concurrency_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // queues gained work, or stop
  std::condition_variable idle_cv_;  // a unit or GET finished
  std::condition_variable task_cv_;  // tasks gained work, or stop
  std::deque<Job> readahead_;
  std::deque<Job> prefetch_;
  std::deque<Deferred> deferred_;  // due times in order (a fixed delay)
  std::map<int, Retries> retries_;  // by mount
  std::size_t retry_jobs_ = 0;      // in retries_, at most kMaxQueuedJobs
  std::vector<std::shared_ptr<InFlight>> in_flight_;
  std::deque<std::function<void()>> tasks_;
  int task_threads_ = 0;       // running
  int idle_task_threads_ = 0;  // of which waiting for a task
  pid_t owner_ = 0;
  bool thread_running_ = false;
  bool busy_ = false;  // the dispatcher is between take_unit and issuing the GET
  bool stop_ = false;
  FetchProgress progress_;
};

}  // namespace objcache::fetch
