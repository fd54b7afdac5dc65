// SPDX-License-Identifier: Apache-2.0
#include "library.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "dispatch.h"
#include "handover.h"
#include "objcache/config.h"
#include "vfile.h"

namespace objcache::preload::lib {

namespace {

// Written once by load() before mounts_active() is confirmed, never freed (a
// thread may still be reading it while the process exits).
Config* g_config = nullptr;
MountTable* g_table = nullptr;

std::mutex g_vfs_mu;
std::atomic<Vfs*> g_vfs{nullptr};
int g_vfs_error = 0;  // errno of a failed attach; guarded by g_vfs_mu

// The kernel's cwd when it is not inside a mount ("" when unknown), and the
// virtual one. Replaced on chdir, never freed: readers on other threads may
// hold the old one (a few bytes per chdir).
std::atomic<const std::string*> g_real_cwd{nullptr};
std::atomic<const std::string*> g_virtual_cwd{nullptr};

std::atomic<int> g_file_template{-1};
std::atomic<int> g_dir_template{-1};

constexpr const char* kVcwdVar = "OBJCACHE_VCWD";

std::string empty_dir_path() { return "/dev/shm/objcache-" + std::to_string(::getuid()) + "-empty"; }

void say(const std::string& msg) {
  std::string line = "objcache: " + msg + "\n";
  ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  (void)n;
}

void refresh_real_cwd() {
  char buf[PATH_MAX];
  const char* got = ::getcwd(buf, sizeof buf);
  g_real_cwd.store(new std::string(got != nullptr ? got : ""), std::memory_order_release);
}

int open_template(bool directory) {
  if (!directory) return ::open("/dev/null", O_PATH | O_CLOEXEC);
  // An empty directory only we can write to (none can: 0500), so a lookup
  // relative to a placeholder finds nothing.
  std::string path = empty_dir_path();
  (void)::mkdir(path.c_str(), 0500);
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  if (fd >= 0 && (::fstat(fd, &st) != 0 || st.st_uid != ::getuid() || !S_ISDIR(st.st_mode))) {
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) fd = ::open("/proc/self/fdinfo", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return fd;
}

int template_fd(bool directory) {
  std::atomic<int>& slot = directory ? g_dir_template : g_file_template;
  int fd = slot.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  int made = open_template(directory);
  if (made < 0) return -1;
  int expected = -1;
  if (slot.compare_exchange_strong(expected, made, std::memory_order_acq_rel)) return made;
  ::close(made);
  return expected;
}

// What a user debugging wants to see first: which file was read and what
// it mounts. Nothing here is a secret (credentials are a spec like "env").
void log_loaded(const Config& cfg) {
  if (!log_enabled(LogLevel::Debug)) return;
  const CacheConfig& c = cfg.cache;
  log_line(LogLevel::Debug, "configuration %s: cache \"%s\" (memory %s, page_size %s, spill_dir \"%s\"), %zu mounts",
           cfg.path.c_str(), c.name.c_str(), format_size(c.memory).c_str(), format_size(c.page_size).c_str(),
           c.spill_dir.c_str(), cfg.mounts.size());
  constexpr std::size_t kShown = 20;  // a file of 10,000 mounts: the first ones, then a count
  for (std::size_t i = 0; i < cfg.mounts.size() && i < kShown; ++i) {
    const MountConfig& m = cfg.mounts[i];
    log_line(LogLevel::Debug,
             "mount[%zu] %s = %s (endpoint \"%s\", region \"%s\", credentials %s, prefetch %s, "
             "metadata_ttl %s%s)",
             i + 1, m.path.c_str(), m.source_text.c_str(), m.store.endpoint.c_str(), m.store.region.c_str(),
             m.store.credentials.c_str(), std::string(to_string(m.prefetch)).c_str(),
             format_duration(m.metadata_ttl).c_str(), m.writable ? ", writable" : "");
  }
  if (cfg.mounts.size() > kShown) {
    log_line(LogLevel::Debug, "... and %zu more mounts", cfg.mounts.size() - kShown);
  }
}

}  // namespace

bool load() noexcept {
  ReentryGuard guard;
  ErrnoScope keep_errno;
  try {
    auto path = find_config_path();
    if (!path) return false;
    auto cfg = load_config(*path);
    if (!cfg) {
      say(cfg.error().describe() + " (passing every path through)");
      return false;
    }
    if (cfg->mounts.empty()) return false;
    g_config = new Config(std::move(*cfg));
    configure_logging(g_config->log);
    log_loaded(*g_config);
    g_table = new MountTable(g_config->mounts);
    refresh_real_cwd();
    // A virtual cwd handed over by exec (env_for_exec), if the kernel's cwd
    // is still the placeholder it was left in.
    if (const char* vc = std::getenv(kVcwdVar); vc != nullptr && vc[0] == '/') {
      std::string empty = empty_dir_path();
      const std::string* rc = g_real_cwd.load(std::memory_order_relaxed);
      if (rc != nullptr && *rc == empty && g_table->resolve(vc).ours()) {
        g_virtual_cwd.store(new std::string(vc), std::memory_order_release);
      }
    }
    dispatch::mounts_active().store(true, std::memory_order_release);
    return true;
  } catch (...) {
    say("cannot load the configuration (passing every path through)");
    return false;
  }
}

const MountTable& mounts() noexcept {
  static const MountTable empty{std::vector<MountConfig>{}};
  return g_table != nullptr ? *g_table : empty;
}

Vfs* vfs(int* error) noexcept {
  Vfs* v = g_vfs.load(std::memory_order_acquire);
  if (v != nullptr) return v;
  std::lock_guard<std::mutex> g(g_vfs_mu);
  v = g_vfs.load(std::memory_order_relaxed);
  if (v != nullptr) return v;
  if (g_config == nullptr) {
    *error = ENOENT;
    return nullptr;
  }
  if (g_vfs_error != 0) {
    *error = g_vfs_error;
    return nullptr;
  }
  PageCacheOptions opts;
  if (const char* d = std::getenv("OBJCACHE_SHM_DIR"); d != nullptr) opts.shm_dir = d;
  auto made = Vfs::open(*g_config, opts);
  if (!made) {
    log_line(LogLevel::Error, "cannot open the cache: %s", made.error().describe().c_str());
    g_vfs_error = to_errno(made.status());
    if (g_vfs_error == 0 || g_vfs_error == ENOENT) g_vfs_error = EIO;
    *error = g_vfs_error;
    return nullptr;
  }
  v = made->release();
  log_line(LogLevel::Debug, "cache \"%s\" attached (segment in %s)", g_config->cache.name.c_str(),
           opts.shm_dir.empty() ? "/dev/shm" : opts.shm_dir.c_str());
  g_vfs.store(v, std::memory_order_release);
  return v;
}

Target resolve(const char* path) noexcept {
  Target t;
  try {
    if (path == nullptr) return t;
    std::string_view cwd;
    if (path[0] == '/') {
    } else if (const std::string* vc = g_virtual_cwd.load(std::memory_order_acquire); vc != nullptr) {
      cwd = *vc;
    } else if (const std::string* rc = g_real_cwd.load(std::memory_order_acquire); rc != nullptr) {
      cwd = *rc;
    } else {
      return t;
    }
    t.where = mounts().resolve(path, cwd);
    if (!t.where.ours()) {
      // A directory above mounts is ours only where the disk has nothing.
      MountTable::Above a = mounts().above(path, cwd);
      struct stat st {};
      if (!a.names.empty() && ::lstat(a.path.c_str(), &st) != 0 && errno == ENOENT) t.above = std::move(a);
    }
  } catch (...) {
    t = Target{};
  }
  return t;
}

Result<std::shared_ptr<const Listing>> list(Vfs& v, const Node& dir) noexcept {
  try {
    if (dir.mount >= 0) return v.list(dir);
    auto out = std::make_shared<Listing>();
    for (std::string& name : mounts().above(dir.key).names) {
      DirEntry e;
      e.kind = NodeKind::Directory;
      e.ino = Vfs::ino_of(-1, dir.key + "/" + name);
      e.name = std::move(name);
      out->push_back(std::move(e));
    }
    return std::shared_ptr<const Listing>(std::move(out));
  } catch (...) {
    return make_error(Status::IoError, "out of memory");
  }
}

Target resolve_at(int dirfd, const char* path) noexcept {
  if (path == nullptr || path[0] == '/' || dirfd == AT_FDCWD) return resolve(path);
  Target t;
  FileRef dir = FileRef::acquire(dirfd);
  if (!dir) return t;
  if (!dir->node.is_dir()) {
    t.bad_dirfd = true;
    return t;
  }
  try {
    t.where = mounts().resolve_at(dir->node.mount, dir->node.key, path);
  } catch (...) {
    t.where = Resolved{};
  }
  return t;
}

std::string virtual_cwd() noexcept {
  const std::string* vc = g_virtual_cwd.load(std::memory_order_acquire);
  try {
    return vc != nullptr ? *vc : std::string();
  } catch (...) {
    return {};
  }
}

bool has_virtual_cwd() noexcept { return g_virtual_cwd.load(std::memory_order_relaxed) != nullptr; }

void set_virtual_cwd(std::string path) noexcept {
  try {
    if (path.empty()) {
      g_virtual_cwd.store(nullptr, std::memory_order_release);
      refresh_real_cwd();
    } else {
      g_virtual_cwd.store(new std::string(std::move(path)), std::memory_order_release);
    }
  } catch (...) {
  }
}

char* const* env_for_exec(char* const* envp, const std::string& staged) noexcept {
  const std::string* vc = g_virtual_cwd.load(std::memory_order_acquire);
  if (vc == nullptr && staged.empty()) return envp;
  try {
    const std::string vcwd = std::string(kVcwdVar) + "=";
    const std::string handed = std::string(handover::kVar) + "=";
    std::size_t n = 0;
    while (envp != nullptr && envp[n] != nullptr) ++n;
    // Leaked if exec fails: a few bytes, once per failed exec.
    auto** out = static_cast<char**>(std::malloc((n + 3) * sizeof(char*)));
    if (out == nullptr) return envp;
    std::size_t k = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::strncmp(envp[i], vcwd.c_str(), vcwd.size()) == 0 && vc != nullptr) continue;
      if (std::strncmp(envp[i], handed.c_str(), handed.size()) == 0) continue;
      out[k++] = envp[i];
    }
    if (vc != nullptr) out[k++] = ::strdup((vcwd + *vc).c_str());
    if (!staged.empty()) out[k++] = ::strdup((handed + staged).c_str());
    out[k] = nullptr;
    return out;
  } catch (...) {
    return envp;
  }
}

int placeholder_fd(bool directory, bool cloexec) noexcept {
  int t = template_fd(directory);
  if (t < 0) return -1;
  return ::fcntl(t, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
}

int empty_dir_fd() noexcept { return template_fd(true); }

}  // namespace objcache::preload::lib
