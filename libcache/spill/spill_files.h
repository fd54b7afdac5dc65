// SPDX-License-Identifier: Apache-2.0
// Opens the files of one spill tier: creates spill_dir (0700) and refuses
// one that another user owns or others may write; opens the data, index and
// lock files in it (0600, O_NOFOLLOW, owner and mode checked), and under the
// lock file checks the index header, recreating both files when it does not
// match (logged). Never reads or writes blocks.
#pragma once

#include <memory>
#include <string>

#include "objcache/result.h"
#include "spill/spill_index.h"

namespace objcache::spill {

struct SpillFiles {
  int data_fd = -1;                    // O_RDWR; the caller closes it
  std::unique_ptr<SpillIndex> index;   // the mapped, checked index
  std::string data_path;
  bool recreated = false;              // an unusable pair was replaced
};

// "<dir>/objcache-<uid>-<name>" + suffix, where uid is the effective uid.
std::string spill_path(const std::string& dir, const std::string& cache_name,
                       const char* suffix);

// Opens (creating if needed) the spill files of cache_name in dir for
// geometry g. A dir owned by another user or writable by group or others,
// or a file in it that is, is refused (AccessDenied, with what to do about
// it): the caller turns the tier off and the cache runs from RAM. A pair written with another geometry or version, or with a
// damaged header, is unlinked and created afresh with one OC_WARN line:
// processes still using the old pair keep their own inodes, so nobody sees
// the file change under a mapping.
Result<SpillFiles> open_spill_files(const std::string& dir, const std::string& cache_name,
                                    const Geometry& g);

}  // namespace objcache::spill
