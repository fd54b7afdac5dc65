// SPDX-License-Identifier: Apache-2.0
#include "fetch/fetcher.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "util/exit_hooks.h"
#include "util/log.h"
#include "util/process.h"

namespace objcache::fetch {
namespace {

// The live fetchers, for the exit handler. Leaked on purpose: it must
// outlive every static destructor that runs at exit.
struct Registry {
  std::mutex mu;
  std::vector<Fetcher*> live;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

void quiesce_all_at_exit() {
  std::vector<Fetcher*> live;
  {
    std::lock_guard<std::mutex> g(registry().mu);
    live = registry().live;
  }
  for (Fetcher* f : live) f->quiesce_for_exit();
}

// The exit hook goes in when the first thread starts: its store exists by
// then (see enqueue and run_task).
void add_exit_hook_once() {
  static std::once_flag once;
  std::call_once(once, [] { exit_hooks::add(exit_hooks::Phase::Quiesce, quiesce_all_at_exit); });
}

}  // namespace

Fetcher::Fetcher(PageCache& cache, StoreOf store_of, std::function<void()> shutdown_stores, int concurrency)
    : cache_(cache),
      store_of_(std::move(store_of)),
      shutdown_stores_(std::move(shutdown_stores)),
      concurrency_(std::max(1, concurrency)),
      owner_(proc::self()) {
  std::lock_guard<std::mutex> g(registry().mu);
  registry().live.push_back(this);
}

Fetcher::~Fetcher() {
  {
    std::lock_guard<std::mutex> g(registry().mu);
    std::erase(registry().live, this);
  }
  std::unique_lock<std::mutex> lk(mu_);
  adopt_after_fork();
  stop_ = true;
  readahead_.clear();
  prefetch_.clear();
  deferred_.clear();
  retries_.clear();
  retry_jobs_ = 0;
  work_cv_.notify_all();
  tasks_.clear();
  task_cv_.notify_all();
  idle_cv_.wait(lk, [&] { return !thread_running_ && task_threads_ == 0 && progress_.in_flight == 0; });
}

std::uint32_t Fetcher::page_count(const FetchTarget& t) const {
  const std::uint64_t ps = cache_.page_size();
  return static_cast<std::uint32_t>((t.size + ps - 1) / ps);
}

PageRef Fetcher::page_ref(const FetchTarget& t, std::uint32_t page) const {
  const std::uint64_t ps = cache_.page_size();
  const std::uint64_t start = static_cast<std::uint64_t>(page) * ps;
  const auto length = static_cast<std::uint32_t>(std::min<std::uint64_t>(ps, t.size - start));
  return PageRef{t.id, page, length, t.mount};
}

// GETs what a fill of `page` needs into dst (the page): the page alone, or,
// for a small object of several pages, the whole object, whose other pages
// go into the cache too (those not cached or being filled already).
Result<std::size_t> Fetcher::get_whole(const FetchTarget& t, std::uint32_t page, std::span<std::byte> dst) {
  auto st = store_of_(t.mount);
  if (!st) return st.error();
  const PageRef ref = page_ref(t, page);
  const std::uint32_t pages = page_count(t);
  GetRequest req;
  req.key = t.key;
  req.if_match = t.etag;
  fill::Gate& gate = cache::gate(cache_);
  gate.try_acquire(fill::Priority::Demand, concurrency_);
  if (pages == 1 || t.size > kSmallObjectMax) {
    req.offset = static_cast<std::uint64_t>(page) * cache_.page_size();
    req.length = ref.length;
    const auto sent = Clock::now();
    auto r = (*st)->get(req, dst);
    gate.release();
    observe(r, sent);
    if (!r) return r.error();
    store_answered(t.mount);
    if (r->bytes != ref.length) return make_error(Status::PreconditionFailed, "object changed size: " + t.key);
    return std::size_t{ref.length};
  }
  // Claim the other pages first, so a prefetch of this object finds them
  // being filled and sends no GET of its own.
  const std::uint64_t ps = cache_.page_size();
  std::vector<cache::PendingFill> others;
  for (std::uint32_t q = 0; q < pages; ++q) {
    if (q == page) continue;
    if (auto f = cache::try_begin_fill(cache_, page_ref(t, q), /*may_evict=*/true)) others.push_back(*f);
  }
  std::vector<std::byte> whole(t.size);
  req.offset = 0;
  req.length = t.size;
  const auto sent = Clock::now();
  auto r = (*st)->get(req, whole);
  gate.release();
  observe(r, sent);
  if (r) store_answered(t.mount);
  Result<std::size_t> got = std::size_t{0};
  if (!r) got = r.error();
  else if (r->bytes != t.size) got = make_error(Status::PreconditionFailed, "object changed size: " + t.key);
  for (cache::PendingFill& f : others) {
    if (got) std::memcpy(f.data.data(), whole.data() + static_cast<std::uint64_t>(f.ref.page) * ps, f.ref.length);
    cache::end_fill(cache_, f, got ? Result<std::size_t>(std::size_t{f.ref.length}) : got, /*prefetched=*/false);
  }
  if (!got) return got.error();
  std::memcpy(dst.data(), whole.data() + static_cast<std::uint64_t>(page) * ps, ref.length);
  return std::size_t{ref.length};
}

// Tells the gate's adaptive limit how the store answered one GET: the
// answering attempt's time and the throttled attempts before it; a GET
// that failed as throttled counts one throttled attempt more (its time is
// the whole call's). Other failures tell nothing about load.
void Fetcher::observe(const Result<GetResult>& r, Clock::time_point sent) {
  fill::GetSample s;
  if (r) {
    s.throttled = r->throttled_attempts;
    s.latency = r->last_attempt.count() > 0
                    ? r->last_attempt
                    : std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent);
  } else if (r.status() == Status::Throttled) {
    s.throttled = 1;
    s.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent);
  } else {
    return;
  }
  cache::gate(cache_).observe(s, concurrency_);
}

Result<PageRead> Fetcher::read_page(const FetchTarget& t, std::uint32_t page, std::uint32_t in_page,
                                    std::span<std::byte> out) {
  return cache_.read(page_ref(t, page), in_page, out,
                     [&](std::span<std::byte> dst) { return get_whole(t, page, dst); });
}

// ---- the background queue ---------------------------------------------------

void Fetcher::adopt_after_fork() {
  if (owner_ == proc::self()) return;
  // A forked child: the parent's thread and GETs do not exist here. The
  // condition variables may still count the parent's waiting threads, which
  // could swallow a notify_one: start them afresh (nobody here waits on them).
  owner_ = proc::self();
  new (&work_cv_) std::condition_variable;
  new (&idle_cv_) std::condition_variable;
  new (&task_cv_) std::condition_variable;
  readahead_.clear();
  prefetch_.clear();
  deferred_.clear();
  retries_.clear();
  retry_jobs_ = 0;
  in_flight_.clear();
  tasks_.clear();
  task_threads_ = 0;
  idle_task_threads_ = 0;
  thread_running_ = false;
  busy_ = false;
  stop_ = false;
  progress_ = FetchProgress{};
}

void Fetcher::quiesce_for_exit() {
  {
    std::unique_lock<std::mutex> lk(mu_);
    adopt_after_fork();
    stop_ = true;
    readahead_.clear();
    prefetch_.clear();
    deferred_.clear();
    retries_.clear();
    retry_jobs_ = 0;
    progress_.queued_pages = 0;
    progress_.retry_pages = 0;
    // Other processes waiting on these pages fetch them now, instead of
    // waiting for a filler that is about to be gone.
    for (auto& u : in_flight_) {
      u->abandoned = true;
      for (cache::PendingFill& f : u->fills) cache::abandon_fill(cache_, f);
      cache::gate(cache_).release();
    }
    in_flight_.clear();
    tasks_.clear();
    progress_.in_flight = 0;
    work_cv_.notify_all();
    task_cv_.notify_all();
  }
  // Requests in flight or about to be made now fail at once, so the
  // threads below finish what they are doing without waiting on the store.
  if (shutdown_stores_) shutdown_stores_();
  std::unique_lock<std::mutex> lk(mu_);
  idle_cv_.wait_for(lk, std::chrono::milliseconds(500), [&] { return !thread_running_ && task_threads_ == 0; });
}

bool Fetcher::run_task(int mount, std::function<void()> fn) {
  (void)store_of_(mount);  // before the exit handler; outside mu_ (see enqueue)
  std::lock_guard<std::mutex> g(mu_);
  adopt_after_fork();
  if (stop_ || tasks_.size() >= kMaxQueuedJobs) return false;
  tasks_.push_back(std::move(fn));
  if (idle_task_threads_ < static_cast<int>(tasks_.size()) && task_threads_ < kTaskThreads) {
    try {
      if (task_threads_ == 0) add_exit_hook_once();
      std::thread(&Fetcher::run_tasks, this).detach();
      ++task_threads_;
    } catch (const std::exception& e) {
      if (task_threads_ == 0) {
        tasks_.clear();
        return false;
      }
    }
  }
  task_cv_.notify_one();
  return true;
}

void Fetcher::run_tasks() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    ++idle_task_threads_;
    task_cv_.wait(lk, [&] { return stop_ || !tasks_.empty(); });
    --idle_task_threads_;
    if (stop_) break;
    std::function<void()> fn = std::move(tasks_.front());
    tasks_.pop_front();
    lk.unlock();
    fn();
    lk.lock();
  }
  --task_threads_;
  idle_cv_.notify_all();
}

bool Fetcher::enqueue(fill::Priority p, std::shared_ptr<const FetchTarget> t, std::uint32_t first,
                      std::uint32_t count) {
  const std::uint32_t pages = page_count(*t);
  if (first >= pages) return true;
  count = std::min(count, pages - first);
  if (count == 0) return true;
  // The store (and with it libcurl and OpenSSL) exists before the exit
  // handler is registered below, so the handler runs before their
  // cleanups. Made outside mu_: the fork handlers take the stores' lock
  // before ours.
  (void)store_of_(t->mount);
  std::lock_guard<std::mutex> g(mu_);
  adopt_after_fork();
  if (stop_) return false;
  std::deque<Job>& q = p == fill::Priority::Prefetch ? prefetch_ : readahead_;
  if (q.size() >= kMaxQueuedJobs) return false;
  q.push_back(Job{std::move(t), first, count, p == fill::Priority::Prefetch ? p : fill::Priority::Readahead});
  progress_.queued_pages += count;
  if (!thread_running_) {
    try {
      add_exit_hook_once();
      std::thread(&Fetcher::run, this).detach();
      thread_running_ = true;
    } catch (const std::exception& e) {
      OC_WARN("prefetch disabled: cannot start its thread: %s", e.what());
      readahead_.clear();
      prefetch_.clear();
      progress_.queued_pages = 0;
      return false;
    }
  }
  work_cv_.notify_one();
  return true;
}

bool Fetcher::take_unit(Unit& u) {
  promote_due(Clock::now());
  bool ra = !readahead_.empty();
  std::deque<Job>& q = ra ? readahead_ : prefetch_;
  if (q.empty()) return false;
  Job& j = q.front();
  u.target = j.target;
  u.priority = j.priority;
  u.probe = j.probe;
  u.retry = j.retry;
  u.first = j.first;
  // A small object is one GET: the whole job is one unit.
  u.count = j.target->size <= kSmallObjectMax ? j.count : 1;
  j.first += u.count;
  j.count -= u.count;
  j.probe = false;  // only the first unit of a job probes
  progress_.queued_pages -= u.count;
  if (j.count == 0) q.pop_front();
  return true;
}

void Fetcher::promote_due(Clock::time_point now) {
  while (!deferred_.empty() && deferred_.front().due <= now) {
    Job& j = deferred_.front().job;
    (j.priority == fill::Priority::Prefetch ? prefetch_ : readahead_).push_back(std::move(j));
    deferred_.pop_front();
  }
  for (auto& [mount, r] : retries_) {
    if (r.probing || r.jobs.empty()) continue;
    const bool back = r.saw_unreachable && r.store != nullptr && r.store->reachable();
    if (now < r.next && !back) continue;
    // One GET finds out whether the store answers; the others wait for it.
    Job j = std::move(r.jobs.front());
    r.jobs.pop_front();
    --retry_jobs_;
    progress_.retry_pages -= j.count;
    progress_.queued_pages += j.count;
    j.probe = true;
    r.probing = true;
    (j.priority == fill::Priority::Prefetch ? prefetch_ : readahead_).push_front(std::move(j));
  }
}

Fetcher::Clock::time_point Fetcher::next_wake(Clock::time_point now) const {
  Clock::time_point wake = Clock::time_point::max();
  if (!deferred_.empty()) wake = deferred_.front().due;
  for (const auto& [mount, r] : retries_) {
    if (r.probing || r.jobs.empty()) continue;
    wake = std::min(wake, r.next);
    if (r.saw_unreachable) wake = std::min(wake, now + kReachableCheck);
  }
  return wake;
}

void Fetcher::requeue_retries(int mount) {
  auto it = retries_.find(mount);
  if (it == retries_.end()) return;
  for (Job& j : it->second.jobs) {
    j.probe = false;
    progress_.retry_pages -= j.count;
    progress_.queued_pages += j.count;
    (j.priority == fill::Priority::Prefetch ? prefetch_ : readahead_).push_back(std::move(j));
  }
  retry_jobs_ -= it->second.jobs.size();
  retries_.erase(it);
  work_cv_.notify_one();
}

void Fetcher::record_outcome(const Unit& u, ObjectStore* store, const Result<std::size_t>& got) {
  const int mount = u.target->mount;
  if (got) {
    // Fetched after all: no longer a failed page.
    if (u.retry) progress_.failed_pages -= std::min<std::uint64_t>(progress_.failed_pages, u.count);
    requeue_retries(mount);
    return;
  }
  const Status st = got.status();
  const bool outage = st == Status::Transient || st == Status::Throttled || st == Status::Timeout;
  auto it = retries_.find(mount);
  if (!outage || stop_ || owner_ != proc::self()) {
    if (u.probe && it != retries_.end()) it->second.probing = false;  // let the next one probe
    return;
  }
  Retries& r = retries_[mount];
  const auto now = Clock::now();
  if (u.probe || r.backoff.count() == 0) {
    r.backoff = r.backoff.count() == 0 ? kRetryFirst : std::min(r.backoff * 2, kRetryMax);
    r.next = now + r.backoff;
  }
  if (u.probe) r.probing = false;
  r.store = store;
  r.saw_unreachable = store != nullptr && !store->reachable();
  if (retry_jobs_ < kMaxQueuedJobs) {
    r.jobs.push_back(Job{u.target, u.first, u.count, u.priority, false, true});
    ++retry_jobs_;
    progress_.retry_pages += u.count;
  }
  work_cv_.notify_one();  // the dispatcher's next wake may be sooner now
}

void Fetcher::probe_not_sent(const Unit& u) {
  if (!u.probe) return;
  std::lock_guard<std::mutex> g(mu_);
  auto it = retries_.find(u.target->mount);
  if (it != retries_.end()) it->second.probing = false;  // the next retry probes
  work_cv_.notify_one();
}

void Fetcher::store_answered(int mount) {
  std::lock_guard<std::mutex> g(mu_);
  if (owner_ != proc::self() || stop_) return;
  requeue_retries(mount);
}

void Fetcher::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    auto ready = [&] { return stop_ || !readahead_.empty() || !prefetch_.empty(); };
    const Clock::time_point wake = next_wake(Clock::now());
    if (wake == Clock::time_point::max()) work_cv_.wait(lk, ready);
    else work_cv_.wait_until(lk, wake, ready);
    if (stop_) break;
    Unit u;
    if (!take_unit(u)) continue;
    busy_ = true;
    lk.unlock();
    run_unit(u);
    lk.lock();
    busy_ = false;
    idle_cv_.notify_all();
  }
  thread_running_ = false;
  idle_cv_.notify_all();
}

void Fetcher::unit_done(std::uint64_t bytes, std::uint64_t failed) {
  std::lock_guard<std::mutex> g(mu_);
  progress_.fetched_bytes += bytes;
  progress_.failed_pages += failed;
  --progress_.in_flight;
  idle_cv_.notify_all();
}

// Claims the unit's pages, takes a gate slot and starts one GET for them;
// returns once the GET is started (or there was nothing to do).
void Fetcher::run_unit(const Unit& u) {
  const FetchTarget& t = *u.target;
  const bool prefetch = u.priority == fill::Priority::Prefetch;
  // Cheap look first: nothing to do if every page is in RAM.
  bool any_missing = false;
  for (std::uint32_t p = u.first; p < u.first + u.count && !any_missing; ++p) {
    any_missing = !cache_.contains(t.id, p);
  }
  if (!any_missing) {
    probe_not_sent(u);
    std::lock_guard<std::mutex> g(mu_);
    progress_.skipped_pages += u.count;
    if (u.retry) progress_.failed_pages -= std::min<std::uint64_t>(progress_.failed_pages, u.count);
    return;
  }
  fill::Gate& gate = cache::gate(cache_);
  // A stop (process exit) is seen within ~20 ms.
  auto stopping_now = [&] {
    std::lock_guard<std::mutex> g(mu_);
    return stop_ || owner_ != proc::self();
  };
  while (!gate.acquire(u.priority, concurrency_, std::chrono::seconds(10), stopping_now)) {
    if (stopping_now()) return;  // nothing probes any more
  }
  // Claim what is still missing. A small object is fetched whole even if
  // some of its pages are cached: it is one request either way.
  auto unit = std::make_shared<InFlight>();
  std::vector<cache::PendingFill>& fills = unit->fills;
  std::uint64_t no_room = 0;
  std::vector<Job> busy;  // runs of pages a live process is filling
  for (std::uint32_t p = u.first; p < u.first + u.count; ++p) {
    cache::FillSkip why = cache::FillSkip::Cached;
    auto f = cache::try_begin_fill(cache_, page_ref(t, p), /*may_evict=*/!prefetch, &why);
    if (f) {
      fills.push_back(*f);
    } else if (why == cache::FillSkip::NoRoom) {
      ++no_room;
    } else if (why == cache::FillSkip::Busy) {
      if (!busy.empty() && busy.back().first + busy.back().count == p) ++busy.back().count;
      else busy.push_back(Job{u.target, p, 1, u.priority, false, u.retry});
    }
  }
  bool stopping = false;
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping = stop_ || owner_ != proc::self();
    std::uint64_t busy_pages = 0;
    if (!stopping) {
      // Looked at again soon: cached by then (skipped), or ours to fetch.
      const auto due = Clock::now() + kBusyRecheck;
      for (Job& j : busy) {
        busy_pages += j.count;
        progress_.queued_pages += j.count;
        deferred_.push_back(Deferred{std::move(j), due});
      }
    }
    progress_.no_room_pages += no_room;
    progress_.skipped_pages += u.count - fills.size() - no_room - busy_pages;
    if (!fills.empty() && !stopping) {
      ++progress_.in_flight;
      in_flight_.push_back(unit);
    }
  }
  if (fills.empty() || stopping) {
    for (cache::PendingFill& f : fills) cache::end_fill(cache_, f, make_error(Status::Transient, "stopping"), prefetch);
    gate.release();
    probe_not_sent(u);
    return;
  }
  auto st = store_of_(t.mount);
  ObjectStore* store = st ? *st : nullptr;
  auto finish = [this, unit, prefetch, u, store](const Result<std::size_t>& got) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (unit->abandoned) return;  // the exit handler let go of it
      std::erase(in_flight_, unit);
    }
    std::uint64_t bytes = 0;
    for (cache::PendingFill& f : unit->fills) {
      cache::end_fill(cache_, f, got ? Result<std::size_t>(std::size_t{f.ref.length}) : got, prefetch);
      if (got) bytes += f.ref.length;
    }
    cache::gate(cache_).release();
    {
      std::lock_guard<std::mutex> g(mu_);
      record_outcome(u, store, got);
    }
    unit_done(bytes, got || u.retry ? 0 : unit->fills.size());  // a retry's pages counted already
  };
  if (!st) {
    OC_WARN("prefetch of %s: %s", t.key.c_str(), st.error().describe().c_str());
    finish(st.error());
    return;
  }
  GetRequest req;
  req.key = t.key;
  req.if_match = t.etag;
  const std::uint64_t ps = cache_.page_size();
  // Counted when sent, so a process that exits with GETs in flight still
  // accounts for every request it made.
  cache_.count_remote(0, t.mount);
  if (fills.size() == 1 && (u.count == 1 || t.size > kSmallObjectMax)) {
    // One page: straight into its reservation.
    cache::PendingFill& f = fills.front();
    req.offset = static_cast<std::uint64_t>(f.ref.page) * ps;
    req.length = f.ref.length;
    (*st)->get_async(req, f.data, [this, finish, want = f.ref.length, sent = Clock::now()](Result<GetResult> r) {
      observe(r, sent);
      if (!r) return finish(r.error());
      if (r->bytes != want) return finish(make_error(Status::PreconditionFailed, "object changed size"));
      finish(std::size_t{want});
    });
    return;
  }
  // Several pages of a small object: one GET of the whole object.
  auto whole = std::make_shared<std::vector<std::byte>>(t.size);
  req.offset = 0;
  req.length = t.size;
  (*st)->get_async(req, *whole, [this, finish, whole, unit, ps, size = t.size,
                                 sent = Clock::now()](Result<GetResult> r) {
    observe(r, sent);
    if (!r) return finish(r.error());
    if (r->bytes != size) return finish(make_error(Status::PreconditionFailed, "object changed size"));
    for (cache::PendingFill& f : unit->fills) {
      std::memcpy(f.data.data(), whole->data() + static_cast<std::uint64_t>(f.ref.page) * ps, f.ref.length);
    }
    finish(std::size_t{0});
  });
}

void Fetcher::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  adopt_after_fork();
  idle_cv_.wait(lk, [&] {
    return readahead_.empty() && prefetch_.empty() && !busy_ && progress_.in_flight == 0;
  });
}

void Fetcher::cancel() {
  std::lock_guard<std::mutex> g(mu_);
  adopt_after_fork();
  readahead_.clear();
  prefetch_.clear();
  deferred_.clear();
  retries_.clear();
  retry_jobs_ = 0;
  progress_.queued_pages = 0;
  progress_.retry_pages = 0;
}

FetchProgress Fetcher::progress() {
  std::lock_guard<std::mutex> g(mu_);
  adopt_after_fork();
  return progress_;
}

}  // namespace objcache::fetch
