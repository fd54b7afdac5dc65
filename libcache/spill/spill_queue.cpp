// SPDX-License-Identifier: Apache-2.0
#include "spill/spill_queue.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <system_error>
#include <utility>

namespace objcache::spill {

SpillQueue::SpillQueue(std::size_t max_bytes, std::size_t max_blocks, Writer writer)
    : max_bytes_(max_bytes), max_blocks_(max_blocks), writer_(std::move(writer)), owner_(::getpid()) {}

Result<std::unique_ptr<SpillQueue>> SpillQueue::start(std::size_t max_bytes, std::size_t max_blocks,
                                                      Writer writer) {
  std::unique_ptr<SpillQueue> q;
  try {
    q.reset(new SpillQueue(max_bytes, max_blocks, std::move(writer)));
  } catch (const std::bad_alloc&) {
    return make_error(Status::IoError, "spill: out of memory for the write queue");
  }
  // The thread inherits the creator's signal mask: block everything that
  // can be blocked while creating it, then restore ours.
  sigset_t all, old;
  sigfillset(&all);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) sigdelset(&all, sig);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::string failure;
  try {
    q->thread_ = std::thread([raw = q.get()] { raw->run(); });
  } catch (const std::system_error& e) {
    failure = e.what();
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!failure.empty())
    return make_error(Status::IoError, "spill: cannot start the writer thread: " + failure);
  pthread_setname_np(q->thread_.native_handle(), "objcache-spill");
  return q;
}

SpillQueue::~SpillQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SpillQueue::has_room(std::size_t bytes) const {
  return bytes_hint_.load(std::memory_order_relaxed) + bytes <= max_bytes_;
}

bool SpillQueue::push(PendingBlock&& b) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || bytes_ + b.data_len > max_bytes_ || queue_.size() >= max_blocks_) return false;
    try {
      queue_.push_back(std::move(b));
    } catch (const std::bad_alloc&) {
      return false;
    }
    bytes_ += queue_.back().data_len;
    ++pushed_;
    bytes_hint_.store(bytes_, std::memory_order_relaxed);
  }
  work_cv_.notify_one();
  return true;
}

void SpillQueue::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  const std::uint64_t target = pushed_;
  idle_cv_.wait(lock, [&] { return done_ >= target; });
}

void SpillQueue::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is written
    PendingBlock b = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    writer_(b);
    const std::size_t len = b.data_len;
    b.buf.reset();
    lock.lock();
    bytes_ -= len;
    ++done_;
    bytes_hint_.store(bytes_, std::memory_order_relaxed);
    idle_cv_.notify_all();
  }
}

}  // namespace objcache::spill
