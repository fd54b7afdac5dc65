// SPDX-License-Identifier: Apache-2.0
// The inode and device numbers stat shows for (mount, key): stable across
// processes and restarts (a hash of the key), never 0, one device per mount.
#pragma once

#include <cstdint>
#include <string_view>

#include "util/checksum.h"

namespace objcache::meta {

inline std::uint64_t ino_of(int mount, std::string_view key) {
  std::uint64_t h = checksum64(key.data(), key.size(), static_cast<std::uint64_t>(mount) + 0x6f6263);
  h &= (1ull << 62) - 1;  // positive in every signed view
  return h == 0 ? 1 : h;
}

inline std::uint64_t dev_of(int mount) {
  // An unnamed-device style number (major 0), distinct per mount.
  return 0x0bc00000ull + static_cast<std::uint64_t>(mount);
}

}  // namespace objcache::meta
