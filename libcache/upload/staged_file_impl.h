// SPDX-License-Identifier: Apache-2.0
// The inside of a StagedFile (objcache/staged_file.h): what it needs of the
// parts around it (the mount's store, the page cache, the metadata cache,
// the staging directory, the gate) and its state. Made by the Vfs; the
// methods are in staged_file.cpp.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "fill/gate.h"
#include "meta/metadata_cache.h"
#include "objcache/config.h"
#include "objcache/object_store.h"
#include "objcache/page_cache.h"
#include "objcache/staged_file.h"
#include "upload/staging_dir.h"
#include "upload/streaming_upload.h"

namespace objcache {

struct StagedFile::Impl {
  // The parts it works with (owned by the Vfs, which outlives it).
  const Config* cfg = nullptr;
  ObjectStore* store = nullptr;
  PageCache* cache = nullptr;
  meta::MetadataCache* meta = nullptr;
  const upload::StagingDir* staging = nullptr;
  fill::Gate* gate = nullptr;

  int mount = -1;
  std::string key;
  upload::StagedInfo info;
  int program_fd = -1;  // until take_fd()
  int own_fd = -1;      // read-only, for uploads (the program may close its fd first)

  std::mutex mu;  // guards what follows
  std::unique_ptr<upload::StreamingUpload> upload;
  bool dirty = false;          // written since the last upload (or created, or truncated)
  bool exists = false;         // the object is in the bucket under key
  std::string delete_after;    // an old key to delete once the object is up (a rename)
  int write_error = 0;         // a write through the fd failed with this
  bool committed = false;
  bool unlinked = false;       // commit uploads nothing

  ~Impl();
  // A new streaming session for what is written next; `already`: bytes
  // [0, already) are in the file now and belong to the next upload.
  // stream false: nothing is sent before close (writes may go anywhere
  // into those bytes, so no part of them is final).
  void new_session(std::uint64_t already, bool stream = true);
  std::uint64_t file_size() const;
  // Uploads the file as it is now; keeps the staged file on failure.
  Result<void> upload_now(const char* why);
};

}  // namespace objcache
