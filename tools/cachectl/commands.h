// SPDX-License-Identifier: Apache-2.0
// The cachectl commands. Each adds itself to the one command line (its
// options, its help) and is run once that is parsed; none parses argv.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "objcache/config.h"
#include "objcache/page_cache.h"
#include "objcache/vfs.h"

namespace CLI {
class App;
}

namespace objcache::cachectl {

struct GlobalOptions {
  std::string config_path;  // --config, else OBJCACHE_CONFIG and the defaults
};

// How a command prints its result.
enum class Output { Text, Json, Prometheus };

// A command on the command line: its subcommand (owned by the top-level
// App) and what runs it once the whole command line parsed.
struct Command {
  CLI::App* app;
  std::function<int(const GlobalOptions&)> run;
};

// Adds the subcommand `name` to app. summary is its line in 'cachectl
// --help'; details (wrapped by hand) open its own '--help' under the usage
// line.
CLI::App* add_command(CLI::App& app, const char* name, const char* summary, const char* details);

// One per command: adds it to app and returns it.
Command add_check(CLI::App& app);
Command add_stats(CLI::App& app);
Command add_load(CLI::App& app);
Command add_ls(CLI::App& app);
Command add_evict(CLI::App& app);
Command add_pin(CLI::App& app);
Command add_unpin(CLI::App& app);
Command add_verify(CLI::App& app);
Command add_uploads(CLI::App& app);
Command add_manifest(CLI::App& app);

// Loads the configuration named by g (or found the usual way); the error
// says which file and why.
Result<Config> load_global_config(const GlobalOptions& g);

// OBJCACHE_SHM_DIR, where tests keep their segments (else /dev/shm).
std::string shm_dir_override();

// Attaches to the cache cfg names without creating it: NotFound when no
// process has used it since boot.
Result<std::unique_ptr<PageCache>> attach_cache(const Config& cfg);

// The mounts of cfg as a Vfs (attaching the cache, or making it), as a
// program under the shim would see them; segments in shm_dir_override().
Result<std::unique_ptr<Vfs>> open_vfs(const Config& cfg);

}  // namespace objcache::cachectl
