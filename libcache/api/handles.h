// SPDX-License-Identifier: Apache-2.0
// The insides of the handles Cache gives out (File, Writer, Lister): each
// keeps the generation it was made in alive (api/shared.h). Internal to api/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "api/shared.h"
#include "objcache/cache.h"
#include "objcache/metadata.h"
#include "objcache/object_store.h"
#include "objcache/staged_file.h"

namespace objcache {

struct File::Impl {
  std::shared_ptr<api::Generation> gen;
  Node node;  // pinned to its ETag: every read sends If-Match
  std::string bucket;
  std::uint64_t pos = 0;
};

struct Writer::Impl {
  std::shared_ptr<api::Generation> gen;
  std::unique_ptr<StagedFile> staged;
  int fd = -1;              // the staged file; closed at commit or abort
  std::uint64_t written = 0;
  int error = 0;            // errno of a failed write: commit fails with it
  bool finished = false;    // committed or aborted
  ~Impl();
};

struct Lister::Impl {
  std::shared_ptr<api::Shared> shared;
  api::Target target;
  ObjectStore* store = nullptr;  // the mount's, owned by target.gen's Vfs
  std::string prefix;
  std::string token;        // continuation of the next page
  bool done = false;
};

}  // namespace objcache
