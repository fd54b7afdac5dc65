// SPDX-License-Identifier: Apache-2.0
#include "store/store_set.h"

namespace objcache::store {

StoreSet::StoreSet(std::vector<MountConfig> mounts) : mounts_(std::move(mounts)), stores_(mounts_.size()) {}

Result<ObjectStore*> StoreSet::of(int m) {
  if (m < 0 || static_cast<std::size_t>(m) >= mounts_.size()) {
    return make_error(Status::InvalidArgument, "no mount " + std::to_string(m));
  }
  std::lock_guard<std::mutex> g(mu_);
  auto& s = stores_[static_cast<std::size_t>(m)];
  if (!s) {
    const MountConfig& mc = mounts_[static_cast<std::size_t>(m)];
    auto made = create_s3_store(mc.store, mc.source.bucket);
    if (!made) return made.error();
    s = std::move(*made);
  }
  return s.get();
}

void StoreSet::shutdown_all() {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& s : stores_) {
    if (s) s->shutdown();
  }
}

}  // namespace objcache::store
