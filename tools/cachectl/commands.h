// SPDX-License-Identifier: Apache-2.0
// The cachectl commands. Each takes its own arguments (after the command
// name) and returns the process exit status.
#pragma once

#include <string>
#include <vector>

#include <memory>

#include "objcache/config.h"
#include "objcache/page_cache.h"

namespace objcache::cachectl {

struct GlobalOptions {
  std::string config_path;  // --config, else OBJCACHE_CONFIG and the defaults
};

// Loads the configuration named by g (or found the usual way); the error
// says which file and why.
Result<Config> load_global_config(const GlobalOptions& g);

// OBJCACHE_SHM_DIR, where tests keep their segments (else /dev/shm).
std::string shm_dir_override();

// Attaches to the cache cfg names without creating it: NotFound when no
// process has used it since boot.
Result<std::unique_ptr<PageCache>> attach_cache(const Config& cfg);

int run_check(const GlobalOptions& g, const std::vector<std::string>& args);
int run_stats(const GlobalOptions& g, const std::vector<std::string>& args);
int run_load(const GlobalOptions& g, const std::vector<std::string>& args);
int run_ls(const GlobalOptions& g, const std::vector<std::string>& args);
int run_evict(const GlobalOptions& g, const std::vector<std::string>& args);
int run_pin(const GlobalOptions& g, const std::vector<std::string>& args);
int run_unpin(const GlobalOptions& g, const std::vector<std::string>& args);
int run_verify(const GlobalOptions& g, const std::vector<std::string>& args);

}  // namespace objcache::cachectl
