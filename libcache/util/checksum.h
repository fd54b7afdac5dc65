// SPDX-License-Identifier: Apache-2.0
// The one checksum of cached data (RAM items and spill blocks): XXH3-64,
// through libxxhash's run-time CPU dispatch. Every path gives the same
// value, so data checksummed on one machine verifies on any.
#pragma once

#include <cstddef>
#include <cstdint>

namespace objcache {

std::uint64_t checksum64(const void* data, std::size_t len, std::uint64_t seed = 0);

}  // namespace objcache
