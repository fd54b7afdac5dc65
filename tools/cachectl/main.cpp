// SPDX-License-Identifier: Apache-2.0
// cachectl: inspect and control an objcache node. This file parses the
// global options and dispatches to one command.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace {

constexpr const char* kUsage =
    "usage: cachectl [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  check     load the configuration, print the effective settings (secrets\n"
    "            masked) and list each mount's bucket; exit 0 only if all is well\n"
    "  stats     the cache's counters summed over its processes, overall and per\n"
    "            mount, and the working set against capacity\n"
    "            [--json | --prometheus] [--watch SECONDS]\n"
    "  load      fetch every file under PATH... into the cache [--json]\n"
    "  ls        PATH...: object sizes and the bytes cached [--json]\n"
    "  evict     PATH...: drop the cached pages of every file under them\n"
    "  pin       PATH...: keep their cached pages in RAM\n"
    "  unpin     PATH...: let eviction take them again\n"
    "  verify    check the checksum of every cached page, RAM and spill [--json]\n"
    "\n"
    "The configuration is FILE, else $OBJCACHE_CONFIG, else\n"
    "~/.config/objcache/config.toml, else /etc/objcache/config.toml.\n"
    "Run 'cachectl COMMAND --help' for a command's options.\n";

}  // namespace

namespace objcache::cachectl {

Result<Config> load_global_config(const GlobalOptions& g) {
  if (!g.config_path.empty()) return load_config(g.config_path);
  auto found = find_config_path();
  if (!found) {
    return make_error(Status::ConfigError,
                      "no configuration: pass --config FILE or set OBJCACHE_CONFIG (looked in "
                      "~/.config/objcache/config.toml and /etc/objcache/config.toml)");
  }
  return load_config(*found);
}

std::string shm_dir_override() {
  const char* d = std::getenv("OBJCACHE_SHM_DIR");
  return d == nullptr ? std::string() : std::string(d);
}

Result<std::unique_ptr<PageCache>> attach_cache(const Config& cfg) {
  PageCacheOptions po;
  po.create = false;
  po.shm_dir = shm_dir_override();
  return PageCache::open(cfg.cache, po);
}

}  // namespace objcache::cachectl

int main(int argc, char** argv) {
  objcache::cachectl::GlobalOptions g;
  std::vector<std::string> args(argv + 1, argv + argc);
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--config") {
      if (i + 1 >= args.size()) {
        std::fputs("cachectl: --config needs a file name\n", stderr);
        return 2;
      }
      g.config_path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      g.config_path = a.substr(9);
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "cachectl: unknown option '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      break;
    }
  }
  if (i >= args.size()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  if (cmd == "check") return objcache::cachectl::run_check(g, rest);
  if (cmd == "stats") return objcache::cachectl::run_stats(g, rest);
  if (cmd == "load") return objcache::cachectl::run_load(g, rest);
  if (cmd == "ls") return objcache::cachectl::run_ls(g, rest);
  if (cmd == "evict") return objcache::cachectl::run_evict(g, rest);
  if (cmd == "pin") return objcache::cachectl::run_pin(g, rest);
  if (cmd == "unpin") return objcache::cachectl::run_unpin(g, rest);
  if (cmd == "verify") return objcache::cachectl::run_verify(g, rest);
  std::fprintf(stderr, "cachectl: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
