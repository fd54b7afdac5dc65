// SPDX-License-Identifier: Apache-2.0
// StoreSet: the object stores of a configuration's mounts, one per mount,
// made on first use (a store starts an HTTP thread and connections, so a
// process pays only for the mounts it touches). Thread-safe. The owner
// holds it across fork (lock_for_fork / unlock_after_fork); each store
// builds its own HTTP client in a forked child.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "objcache/config.h"
#include "objcache/object_store.h"

namespace objcache::store {

class StoreSet {
 public:
  explicit StoreSet(std::vector<MountConfig> mounts);
  StoreSet(const StoreSet&) = delete;
  StoreSet& operator=(const StoreSet&) = delete;

  // The store of mount m, made now if it is the first use; an error when
  // its settings are unusable (bad endpoint, unreadable credentials).
  Result<ObjectStore*> of(int m);
  // ObjectStore::shutdown of every store made so far (process exit).
  void shutdown_all();

  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

 private:
  std::vector<MountConfig> mounts_;
  std::mutex mu_;
  std::vector<std::unique_ptr<ObjectStore>> stores_;  // by mount
};

}  // namespace objcache::store
