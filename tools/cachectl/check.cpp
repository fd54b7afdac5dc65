// SPDX-License-Identifier: Apache-2.0
// cachectl check: is the configuration valid, are the credentials usable,
// can each mount's bucket be listed, and can each writable mount be
// written? Prints the effective settings with secrets masked, then the
// verdicts of each mount.
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"
#include "objcache/object_store.h"
#include "staging.h"

namespace objcache::cachectl {
namespace {

constexpr const char* kCheckSummary =
    "load the configuration, print the effective settings (secrets masked), list each mount's bucket and "
    "write to each writable one; exit 0 only if all is well";
constexpr const char* kCheckDetails =
    "Loads the configuration, prints the effective settings (secrets masked),\n"
    "and for each mount lists its bucket prefix once. On a writable mount it\n"
    "also PUTs a zero-byte probe key (named in the output) and DELETEs it.\n"
    "It also checks the local directories the cache writes (spill_dir, the\n"
    "staging directory): one owned by another user or writable by others is\n"
    "refused by the library, so it fails here too; and warns when the shared\n"
    "memory file system has less room than cache.memory.\n"
    "Exit status 0 when every mount answered and every directory is usable, 1\n"
    "when any failed, 2 when the configuration is invalid.\n";

// `check` should answer within seconds, whatever the configured deadline.
constexpr std::chrono::milliseconds kCheckDeadline{10000};

void print_store(const char* indent, const StoreConfig& s) {
  auto d = describe_s3_store(s);
  if (d) {
    std::printf("%sendpoint = %s\n", indent, d->endpoint.c_str());
    if (d->read_endpoint != d->endpoint) std::printf("%sread_endpoint = %s\n", indent, d->read_endpoint.c_str());
    std::printf("%sregion = %s\n", indent, d->region.c_str());
    std::printf("%scredentials = %s\n", indent, d->credentials.c_str());
  } else {
    std::printf("%scredentials = %s (unusable: %s)\n", indent, s.credentials.c_str(),
                d.error().message.c_str());
  }
  std::printf("%saddressing = %s\n", indent, std::string(to_string(s.addressing)).c_str());
}

// <prefix>.objcache-check-<hostname>-<pid>: names who wrote it, should a
// DELETE fail and leave it behind.
std::string probe_key(const MountConfig& m) {
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "unknown");
  return m.source.prefix + ".objcache-check-" + host + "-" + std::to_string(::getpid());
}

// Lists the mount's prefix once; prints the verdict.
bool can_list(ObjectStore& store, const MountConfig& m) {
  ListRequest req;
  req.prefix = m.source.prefix;
  req.delimiter = "/";
  req.max_keys = 1000;
  auto page = store.list(req);
  if (!page) {
    std::printf("  FAILED: %s\n", page.error().describe().c_str());
    return false;
  }
  std::printf("  ok: listed s3://%s/%s: %zu objects and %zu prefixes on the first page%s\n", m.source.bucket.c_str(),
              m.source.prefix.c_str(), page->objects.size(), page->common_prefixes.size(),
              page->truncated ? " (more follow)" : "");
  return true;
}

// PUTs a zero-byte probe key and DELETEs it; prints the verdict.
bool can_write(ObjectStore& store, const MountConfig& m) {
  const std::string key = probe_key(m);
  const std::string url = "s3://" + m.source.bucket + "/" + key;
  auto put = store.put(key, {});
  if (!put) {
    std::printf("  FAILED: cannot write: PUT %s: %s\n", url.c_str(), put.error().describe().c_str());
    return false;
  }
  auto del = store.remove(key);
  if (!del) {
    std::printf("  FAILED: cannot delete: PUT %s worked, DELETE failed (the probe is left in the bucket): %s\n",
                url.c_str(), del.error().describe().c_str());
    return false;
  }
  std::printf("  ok: can write: PUT and DELETE of %s\n", url.c_str());
  return true;
}

// A directory the cache writes in, as the library will judge it (it refuses
// one owned by another user or writable by group or others), without
// creating it. false when it would be refused.
bool check_local_dir(const char* what, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      std::printf("  ok: %s %s does not exist yet: it is made (0700) at first use\n", what, dir.c_str());
      return true;
    }
    std::printf("  FAILED: %s %s: %s\n", what, dir.c_str(), std::strerror(errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::printf("  FAILED: %s %s is not a directory\n", what, dir.c_str());
    return false;
  }
  if (st.st_uid != ::geteuid()) {
    std::printf("  FAILED: %s %s belongs to uid %u, not to this user (uid %u): it is refused; give the cache a "
                "directory of its own\n", what, dir.c_str(), static_cast<unsigned>(st.st_uid),
                static_cast<unsigned>(::geteuid()));
    return false;
  }
  if ((st.st_mode & 022) != 0) {
    std::printf("  FAILED: %s %s is writable by others (mode %04o): it is refused; chmod 700 it\n", what,
                dir.c_str(), static_cast<unsigned>(st.st_mode & 07777));
    return false;
  }
  std::printf("  ok: %s %s (mode %04o, this user's)\n", what, dir.c_str(), static_cast<unsigned>(st.st_mode & 07777));
  return true;
}

// The huge= option of the tmpfs that holds dir ("" when it has none or is
// not a tmpfs), from /proc/self/mountinfo: the mount whose point is the
// longest prefix of dir's real path.
std::string tmpfs_huge_option(const std::string& dir) {
  char real[PATH_MAX];
  if (::realpath(dir.c_str(), real) == nullptr) return "";
  const std::string path = real;
  std::FILE* f = std::fopen("/proc/self/mountinfo", "re");
  if (f == nullptr) return "";
  std::string best_point, best_huge;
  char* line = nullptr;
  std::size_t cap = 0;
  while (::getline(&line, &cap, f) > 0) {
    // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    std::string l(line);
    std::vector<std::string> w;
    for (std::size_t i = 0; i < l.size();) {
      std::size_t j = l.find_first_of(" \n", i);
      if (j == std::string::npos) j = l.size();
      if (j > i) w.push_back(l.substr(i, j - i));
      i = j + 1;
    }
    auto dash = std::find(w.begin(), w.end(), "-");
    if (w.size() < 5 || dash == w.end() || w.end() - dash < 4) continue;
    const std::string& point = w[4];  // octal escapes (\040) are left: such a point matches nothing
    const bool under = path == point || point == "/" ||
                       (path.compare(0, point.size(), point) == 0 && path[point.size()] == '/');
    if (!under || point.size() < best_point.size()) continue;
    best_point = point;
    best_huge.clear();
    if (dash[1] != "tmpfs") continue;
    const std::string& opts = dash[3];
    for (std::size_t i = 0; i <= opts.size();) {
      std::size_t j = opts.find(',', i);
      if (j == std::string::npos) j = opts.size();
      if (opts.compare(i, 5, "huge=") == 0) best_huge = opts.substr(i + 5, j - i - 5);
      i = j + 1;
    }
  }
  std::free(line);
  std::fclose(f);
  return best_huge;
}

// Huge pages for the segment: a process reading the cache for the first
// time then takes no page fault per 64 KiB of it. Information only.
void check_shm_huge_pages(const std::string& dir) {
  const std::string huge = tmpfs_huge_option(dir);
  if (huge == "always" || huge == "within_size" || huge == "advise") {
    std::printf("  ok: %s gives 2 MiB pages (tmpfs huge=%s): a new process reads the cache without a page "
                "fault per 64 KiB\n", dir.c_str(), huge.c_str());
  } else {
    std::printf("  info: %s has no huge pages (tmpfs huge=%s): each new process takes a page fault per 64 KiB "
                "of the cache it reads first; a tmpfs mounted with huge=within_size (README, \"Huge pages\") "
                "removes that\n", dir.c_str(), huge.empty() ? "never" : huge.c_str());
  }
}

// The shared-memory file system: less room than cache.memory means a cache
// that holds only what fits (a container's 64 MiB /dev/shm). A warning.
void check_shm_room(const CacheConfig& cache) {
  std::string dir = shm_dir_override();
  if (dir.empty()) dir = "/dev/shm";
  struct statvfs sv {};
  if (::statvfs(dir.c_str(), &sv) != 0) {
    std::printf("  warning: cannot stat the shared-memory directory %s: %s\n", dir.c_str(), std::strerror(errno));
    return;
  }
  const std::uint64_t room = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
  check_shm_huge_pages(dir);
  if (room < cache.memory) {
    std::printf("  warning: %s has %s free but cache.memory is %s: a new cache holds at most what fits (enlarge "
                "it, e.g. docker run --shm-size, or lower cache.memory)\n", dir.c_str(), format_size(room).c_str(),
                format_size(cache.memory).c_str());
  } else {
    std::printf("  ok: %s has %s free for cache.memory %s\n", dir.c_str(), format_size(room).c_str(),
                format_size(cache.memory).c_str());
  }
}

int run_check(const GlobalOptions& g) {
  auto cfg = load_global_config(g);
  if (!cfg) {
    std::fprintf(stderr, "cachectl: %s\n", cfg.error().message.c_str());
    return 2;
  }
  std::printf("config: %s\n", cfg->path.c_str());
  std::printf("[cache]\n  name = %s\n  memory = %s\n  spill_dir = %s\n  spill_size = %s\n"
              "  page_size = %s\n  eviction = %s\n",
              cfg->cache.name.c_str(), format_size(cfg->cache.memory).c_str(),
              cfg->cache.spill_dir.empty() ? "(disabled)" : cfg->cache.spill_dir.c_str(),
              format_size(cfg->cache.spill_size).c_str(), format_size(cfg->cache.page_size).c_str(),
              std::string(to_string(cfg->cache.eviction)).c_str());
  std::printf("[local directories]\n");
  int dirs_failed = 0;
  if (!cfg->cache.spill_dir.empty() && !check_local_dir("spill_dir", cfg->cache.spill_dir)) ++dirs_failed;
  const bool writes = std::any_of(cfg->mounts.begin(), cfg->mounts.end(), [](const MountConfig& m) { return m.writable; });
  if (writes && !check_local_dir("staging directory", staging_dir_of(cfg->cache))) ++dirs_failed;
  check_shm_room(cfg->cache);
  std::printf("[store]\n");
  print_store("  ", cfg->store);
  std::printf("  prefetch_concurrency = %d\n  upload_concurrency = %d\n  list_concurrency = %d\n",
              cfg->store.prefetch_concurrency, cfg->store.upload_concurrency, cfg->store.list_concurrency);
  if (cfg->mounts.empty()) {
    std::printf("no [[mount]] configured: every path passes through\n");
    return dirs_failed > 0 ? 1 : 0;
  }

  int failed = 0;
  for (const MountConfig& m : cfg->mounts) {
    std::printf("[[mount]] %s -> %s (%s, metadata_ttl %s, prefetch %s)\n", m.path.c_str(),
                m.source_text.c_str(), m.writable ? "writable" : "read-only",
                format_duration(m.metadata_ttl).c_str(), std::string(to_string(m.prefetch)).c_str());
    print_store("  ", m.store);
    StoreConfig sc = m.store;
    sc.retry_deadline = std::min(sc.retry_deadline, kCheckDeadline);
    auto store = create_s3_store(sc, m.source.bucket);
    if (!store) {
      std::printf("  FAILED: %s\n", store.error().describe().c_str());
      ++failed;
      continue;
    }
    // Written to even when the listing failed: both verdicts tell what is wrong.
    bool ok = can_list(**store, m);
    if (m.writable) {
      ok = can_write(**store, m) && ok;
    } else {
      std::printf("  read-only: no write tried\n");
    }
    if (!ok) ++failed;
  }
  if (failed > 0) {
    std::printf("%d of %zu mounts failed\n", failed, cfg->mounts.size());
    return 1;
  }
  if (dirs_failed > 0) {
    std::printf("all %zu mounts ok, but %d local director%s would be refused (above)\n", cfg->mounts.size(),
                dirs_failed, dirs_failed == 1 ? "y" : "ies");
    return 1;
  }
  std::printf("all %zu mounts ok\n", cfg->mounts.size());
  return 0;
}

}  // namespace

Command add_check(CLI::App& app) {
  return Command{add_command(app, "check", kCheckSummary, kCheckDetails), run_check};
}

}  // namespace objcache::cachectl
