// SPDX-License-Identifier: Apache-2.0
// cachectl commands over mounted paths: load (warm the cache), ls (cached
// bytes against object size), evict, pin, unpin. A PATH is a local path
// under a mount, as a program under the shim would name it.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "objcache/vfs.h"

namespace objcache::cachectl {
namespace {

constexpr const char* kLoadSummary = "fetch every file under PATH... into the cache";
constexpr const char* kLoadDetails =
    "Fetches every file under each PATH (a file or a directory under a mount,\n"
    "walked recursively) into the cache, prefetch_concurrency GETs at a time.\n"
    "What does not fit (RAM, plus spill when enabled) is left out and listed.\n"
    "Shows a progress bar on a terminal; prints a summary when done.\n"
    "Ctrl-C stops it: what was fetched stays cached, nothing half-written is\n"
    "ever served. A page another process is fetching is waited for (taken\n"
    "over if that process died). Exit 1 if a page failed or found no room.\n";
constexpr const char* kLsSummary = "object sizes and the bytes cached";
constexpr const char* kLsDetails =
    "Lists each PATH (a directory's entries, or a file) with the object's size\n"
    "and the bytes of it cached in RAM now.\n";
constexpr const char* kEvictSummary = "drop the cached pages of every file under PATH...";
constexpr const char* kEvictDetails =
    "Drops every cached page of the files under each PATH (recursively) from\n"
    "RAM and spill. The next read fetches them again.\n";
constexpr const char* kPinSummary = "keep the cached pages of PATH... in RAM";
constexpr const char* kPinDetails =
    "Keeps the cached pages of the files under each PATH (recursively) in RAM:\n"
    "eviction skips them until 'cachectl unpin'. Only cached pages are pinned\n"
    "(run 'cachectl load' first); the command says how much that was.\n";
constexpr const char* kUnpinSummary = "let eviction take the pages of PATH... again";
constexpr const char* kUnpinDetails =
    "Lets eviction take the pages of the files under each PATH again.\n";

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted.store(true); }

constexpr const char* kManifestSummary = "write a manifest of the files under PATH...";
constexpr const char* kManifestDetails =
    "Writes one JSON line per file under each PATH (recursively), with its\n"
    "key, size, ETag and mtime: a manifest. A mount that names it\n"
    "(manifest = \"FILE\") lists nothing and stats nothing. Listed through\n"
    "the cache like any program's listing. To stdout, or to --out FILE\n"
    "(written whole, then renamed into place).\n";

struct PathArgs {
  Output output = Output::Text;
  std::vector<std::string> paths;  // at least one
};

std::string cwd() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) != nullptr ? std::string(buf) : std::string("/");
}

// The mounts' cache, and what a PATH names in it.
struct Session {
  Config cfg;
  std::unique_ptr<Vfs> vfs;

  static Result<Session> open(const GlobalOptions& g) {
    auto cfg = load_global_config(g);
    if (!cfg) return cfg.error();
    if (cfg->mounts.empty()) {
      return make_error(Status::ConfigError, cfg->path + ": no [[mount]]: there is nothing to work on");
    }
    auto v = open_vfs(*cfg);
    if (!v) return v.error();
    return Session{std::move(*cfg), std::move(*v)};
  }

  Result<Node> node(const std::string& path) {
    Resolved r = vfs->mounts().resolve(path, cwd());
    if (!r.ours()) {
      std::string mounts;
      for (const auto& m : cfg.mounts) mounts += (mounts.empty() ? "" : ", ") + m.path;
      return make_error(Status::InvalidArgument, "'" + path + "' is under no mount (mounts: " + mounts + ")");
    }
    auto n = vfs->stat(r);
    if (!n) return make_error(n.status(), "'" + path + "': " + n.error().message);
    return n;
  }

  // Calls fn(local path, node) for every file under node (itself if a file).
  Result<void> walk(const Node& n, const std::function<void(const std::string&, const Node&)>& fn) {
    if (!n.is_dir()) {
      fn(vfs->mounts().local_path(n.mount, n.key), n);
      return {};
    }
    auto l = vfs->list(n);
    if (!l) return l.error();
    for (const DirEntry& e : **l) {
      if (g_interrupted.load()) return {};
      Resolved r{n.mount, n.key + e.name, false};
      auto child = vfs->stat(r);
      if (!child) return child.error();
      auto w = walk(*child, fn);
      if (!w) return w;
    }
    return {};
  }
};

std::string human_rate(double bytes_per_s) { return format_size(static_cast<std::uint64_t>(bytes_per_s)) + "/s"; }

std::string human_eta(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--";
  char b[32];
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60) std::snprintf(b, sizeof b, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(b, sizeof b, "%lds", s);
  return b;
}

int run_load(const GlobalOptions& g, const PathArgs& a) {
  auto s = Session::open(g);
  if (!s) {
    std::fprintf(stderr, "cachectl load: %s\n", s.error().message.c_str());
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  // What the cache can hold: RAM, plus spill (pages written through to it
  // stay when RAM evicts them). Files are taken in order until it is full.
  CacheStats before = s->vfs->cache().stats();
  const std::uint64_t capacity = before.ram_capacity_bytes + before.spill_capacity_bytes;
  const std::uint64_t remote_before = before.total.remote_requests;
  std::vector<std::pair<std::string, Node>> files;
  std::vector<std::string> left_out;
  std::uint64_t total = 0;
  std::uint64_t left_out_bytes = 0;
  std::uint64_t already = 0;
  int rc = 0;
  for (const std::string& p : a.paths) {
    auto n = s->node(p);
    if (!n) {
      std::fprintf(stderr, "cachectl load: %s\n", n.error().message.c_str());
      rc = 1;
      continue;
    }
    auto w = s->walk(*n, [&](const std::string& path, const Node& f) {
      if (total + f.size > capacity) {
        left_out.push_back(path);
        left_out_bytes += f.size;
        return;
      }
      total += f.size;
      already += s->vfs->cached_bytes(f);
      files.emplace_back(path, f);
    });
    if (!w) {
      std::fprintf(stderr, "cachectl load: listing '%s': %s\n", p.c_str(), w.error().describe().c_str());
      rc = 1;
    }
  }

  const bool bar = a.output == Output::Text && ::isatty(STDERR_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  std::size_t queued = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto draw = [&](bool final) {
    FetchProgress p = s->vfs->background_progress();
    const std::uint64_t pending_pages = p.queued_pages + p.in_flight;
    const double secs = elapsed();
    const double rate = secs > 0 ? static_cast<double>(p.fetched_bytes) / secs : 0;
    const std::uint64_t done_bytes = std::min(total, already + p.fetched_bytes);
    const double eta = rate > 0 ? static_cast<double>(total - done_bytes) / rate : -1;
    const double frac = total == 0 ? 1.0 : static_cast<double>(done_bytes) / static_cast<double>(total);
    char barbuf[32];
    int fill = static_cast<int>(frac * 24);
    for (int i = 0; i < 24; ++i) barbuf[i] = i < fill ? '#' : '.';
    barbuf[24] = '\0';
    std::fprintf(stderr, "\r[%s] %3.0f%%  %zu files  %s / %s  %s  ETA %s  (%llu pages queued) %s", barbuf,
                 100 * frac, queued, format_size(done_bytes).c_str(), format_size(total).c_str(),
                 human_rate(rate).c_str(), final ? "0s" : human_eta(eta).c_str(),
                 static_cast<unsigned long long>(pending_pages), final ? "\n" : "");
    std::fflush(stderr);
  };
  std::size_t not_queued = 0;
  for (auto& [path, f] : files) {
    if (g_interrupted.load()) break;
    if (!s->vfs->load(f)) {
      if (not_queued++ == 0) std::fprintf(stderr, "cachectl load: could not queue '%s' (see the log)\n", path.c_str());
      continue;
    }
    ++queued;
    // Keep the queue short, so Ctrl-C stops soon and memory stays flat.
    while (s->vfs->background_progress().queued_pages > 4096 && !g_interrupted.load()) {
      if (bar) draw(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Wait, redrawing, until done or interrupted.
  for (;;) {
    FetchProgress p = s->vfs->background_progress();
    if (p.queued_pages == 0 && p.in_flight == 0) break;
    if (g_interrupted.load()) {
      s->vfs->cancel_background();  // GETs in flight finish and are published
    }
    if (bar) draw(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(bar ? 200 : 50));
  }
  s->vfs->wait_background();
  s->vfs->cache().flush_spill();
  if (bar) draw(true);

  FetchProgress p = s->vfs->background_progress();
  const double secs = elapsed();
  CacheStats after = s->vfs->cache().stats();
  const bool interrupted = g_interrupted.load();
  if (a.output == Output::Json) {
    nlohmann::json j;
    j["files"] = queued;
    j["bytes"] = total;
    j["already_cached_bytes"] = already;
    j["fetched_bytes"] = p.fetched_bytes;
    j["requests"] = after.total.remote_requests - remote_before;
    j["failed_pages"] = p.failed_pages;
    j["no_room_pages"] = p.no_room_pages;
    j["not_queued_files"] = not_queued;
    j["seconds"] = secs;
    j["interrupted"] = interrupted;
    j["capacity_bytes"] = capacity;
    j["left_out_files"] = left_out.size();
    j["left_out_bytes"] = left_out_bytes;
    j["left_out"] = left_out.size() <= 100 ? left_out : std::vector<std::string>(left_out.begin(), left_out.begin() + 100);
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s %zu files, %s (%s were cached already): fetched %s in %.1f s (%s), %llu requests\n",
                interrupted ? "interrupted after queueing" : "loaded", queued, format_size(total).c_str(),
                format_size(already).c_str(), format_size(p.fetched_bytes).c_str(), secs,
                human_rate(secs > 0 ? static_cast<double>(p.fetched_bytes) / secs : 0).c_str(),
                static_cast<unsigned long long>(after.total.remote_requests - remote_before));
    if (!left_out.empty()) {
      std::printf("did not fit: %zu files, %s (the cache holds %s: cache.memory%s); first of them: %s\n",
                  left_out.size(), format_size(left_out_bytes).c_str(), format_size(capacity).c_str(),
                  before.spill_capacity_bytes > 0 ? " + spill_size" : "", left_out.front().c_str());
    }
    if (p.failed_pages > 0) {
      std::printf("%llu pages failed to fetch (see the log); run load again to retry them\n",
                  static_cast<unsigned long long>(p.failed_pages));
    }
    if (not_queued > 0) {
      std::printf("%zu files could not be queued (see the log): not loaded\n", not_queued);
    }
    if (p.no_room_pages > 0) {
      std::printf("%llu pages were not loaded: no room in the cache (eviction = \"none\" and it is full, "
                  "or every page is pinned)\n",
                  static_cast<unsigned long long>(p.no_room_pages));
    }
  }
  if (interrupted) return 130;
  // Success only when every page was loaded: a page skipped because
  // another process was filling it is waited for (the fetcher), never
  // counted as loaded.
  if (p.failed_pages > 0 || p.no_room_pages > 0 || not_queued > 0) return 1;
  return rc;
}

int run_ls(const GlobalOptions& g, const PathArgs& a) {
  auto s = Session::open(g);
  if (!s) {
    std::fprintf(stderr, "cachectl ls: %s\n", s.error().message.c_str());
    return 2;
  }
  int rc = 0;
  for (const std::string& p : a.paths) {
    auto n = s->node(p);
    if (!n) {
      std::fprintf(stderr, "cachectl ls: %s\n", n.error().message.c_str());
      rc = 1;
      continue;
    }
    struct Row {
      std::string name;
      bool dir;
      std::uint64_t size;
      std::uint64_t cached;
    };
    std::vector<Row> rows;
    if (n->is_dir()) {
      auto l = s->vfs->list(*n);
      if (!l) {
        std::fprintf(stderr, "cachectl ls: '%s': %s\n", p.c_str(), l.error().describe().c_str());
        rc = 1;
        continue;
      }
      for (const DirEntry& e : **l) {
        Node f;
        f.kind = e.kind;
        f.mount = n->mount;
        f.key = n->key + e.name;
        f.size = e.size;
        f.etag = e.etag;
        rows.push_back(Row{e.name, e.kind == NodeKind::Directory, e.size,
                           e.kind == NodeKind::File && !e.etag.empty() ? s->vfs->cached_bytes(f) : 0});
      }
    } else {
      rows.push_back(Row{p, false, n->size, s->vfs->cached_bytes(*n)});
    }
    std::uint64_t size = 0;
    std::uint64_t cached = 0;
    for (const Row& r : rows) {
      size += r.size;
      cached += r.cached;
    }
    if (a.output == Output::Json) {
      nlohmann::json j;
      j["path"] = p;
      j["size_bytes"] = size;
      j["cached_bytes"] = cached;
      j["entries"] = nlohmann::json::array();
      for (const Row& r : rows) {
        j["entries"].push_back({{"name", r.name}, {"directory", r.dir}, {"size_bytes", r.size}, {"cached_bytes", r.cached}});
      }
      std::printf("%s\n", j.dump(2).c_str());
      continue;
    }
    if (a.paths.size() > 1 || n->is_dir()) std::printf("%s:\n", p.c_str());
    for (const Row& r : rows) {
      if (r.dir) {
        std::printf("  %10s  %10s  %5s  %s/\n", "-", "-", "", r.name.c_str());
      } else {
        double pct = r.size == 0 ? 100.0 : 100.0 * static_cast<double>(r.cached) / static_cast<double>(r.size);
        std::printf("  %10s  %10s  %4.0f%%  %s\n", format_size(r.cached).c_str(), format_size(r.size).c_str(), pct,
                    r.name.c_str());
      }
    }
    std::printf("  %s of %s cached (files of this directory; subdirectories not counted)\n",
                format_size(cached).c_str(), format_size(size).c_str());
  }
  return rc;
}

// evict, pin, unpin: the same walk with a different action per file.
int for_files(const GlobalOptions& g, const PathArgs& a, const char* cmd,
              const std::function<std::uint64_t(Vfs&, const Node&)>& act, const char* verb) {
  auto s = Session::open(g);
  if (!s) {
    std::fprintf(stderr, "cachectl %s: %s\n", cmd, s.error().message.c_str());
    return 2;
  }
  int rc = 0;
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t total = 0;
  for (const std::string& p : a.paths) {
    auto n = s->node(p);
    if (!n) {
      std::fprintf(stderr, "cachectl %s: %s\n", cmd, n.error().message.c_str());
      rc = 1;
      continue;
    }
    auto w = s->walk(*n, [&](const std::string&, const Node& f) {
      ++files;
      total += f.size;
      bytes += act(*s->vfs, f);
    });
    if (!w) {
      std::fprintf(stderr, "cachectl %s: listing '%s': %s\n", cmd, p.c_str(), w.error().describe().c_str());
      rc = 1;
    }
  }
  std::printf("%s %s of %llu files (%s in all)\n", verb, format_size(bytes).c_str(),
              static_cast<unsigned long long>(files), format_size(total).c_str());
  return rc;
}

std::uint64_t evict(Vfs& v, const Node& f) {
  std::uint64_t b = v.cached_bytes(f);
  v.evict(f);
  return b;
}

// A command over PATH...; with --json when json_help is given.
int run_manifest(const GlobalOptions& g, const PathArgs& a, const std::string& out_path) {
  auto s = Session::open(g);
  if (!s) {
    std::fprintf(stderr, "cachectl manifest: %s\n", s.error().message.c_str());
    return 2;
  }
  std::string tmp = out_path.empty() ? std::string() : out_path + ".tmp." + std::to_string(::getpid());
  FILE* out = out_path.empty() ? stdout : std::fopen(tmp.c_str(), "w");
  if (out == nullptr) {
    std::fprintf(stderr, "cachectl manifest: cannot write %s: %s\n", tmp.c_str(), std::strerror(errno));
    return 1;
  }
  int rc = 0;
  std::uint64_t files = 0;
  for (const std::string& p : a.paths) {
    auto n = s->node(p);
    if (!n) {
      std::fprintf(stderr, "cachectl manifest: %s\n", n.error().message.c_str());
      rc = 1;
      continue;
    }
    auto w = s->walk(*n, [&](const std::string&, const Node& f) {
      nlohmann::json j;
      j["key"] = f.key;
      j["size"] = f.size;
      j["etag"] = f.etag;
      j["mtime"] = f.mtime;
      std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      std::fwrite(line.data(), 1, line.size(), out);
      ++files;
    });
    if (!w) {
      std::fprintf(stderr, "cachectl manifest: '%s': %s\n", p.c_str(), w.error().message.c_str());
      rc = 1;
    }
  }
  if (g_interrupted.load()) rc = 130;
  if (out != stdout) {
    const bool written = std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
    const int err = errno;
    std::fclose(out);
    if (!written || rc != 0) {
      if (!written) std::fprintf(stderr, "cachectl manifest: cannot write %s: %s\n", tmp.c_str(), std::strerror(err));
      ::unlink(tmp.c_str());
      return rc != 0 ? rc : 1;
    }
    if (::rename(tmp.c_str(), out_path.c_str()) != 0) {
      std::fprintf(stderr, "cachectl manifest: cannot rename %s to %s: %s\n", tmp.c_str(), out_path.c_str(),
                   std::strerror(errno));
      ::unlink(tmp.c_str());
      return 1;
    }
    std::fprintf(stderr, "cachectl manifest: %llu files in %s\n", static_cast<unsigned long long>(files),
                 out_path.c_str());
  } else if (std::fflush(stdout) != 0) {
    return 1;
  }
  return rc;
}

std::pair<CLI::App*, std::shared_ptr<PathArgs>> add_path_command(CLI::App& app, const char* name,
                                                                 const char* summary, const char* details,
                                                                 const char* json_help) {
  CLI::App* cmd = add_command(app, name, summary, details);
  auto a = std::make_shared<PathArgs>();
  if (json_help != nullptr) cmd->add_flag_callback("--json", [a] { a->output = Output::Json; }, json_help);
  cmd->add_option("PATH", a->paths, "a file or a directory under a mount")->required();
  return {cmd, a};
}

}  // namespace

Command add_load(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "load", kLoadSummary, kLoadDetails, "the summary as one JSON object");
  return Command{cmd, [a](const GlobalOptions& g) { return run_load(g, *a); }};
}

Command add_ls(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "ls", kLsSummary, kLsDetails, "one JSON object per PATH");
  return Command{cmd, [a](const GlobalOptions& g) { return run_ls(g, *a); }};
}

Command add_manifest(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "manifest", kManifestSummary, kManifestDetails, nullptr);
  auto out = std::make_shared<std::string>();
  cmd->add_option("--out", *out, "the manifest file to write (default: stdout)");
  return Command{cmd, [a, out](const GlobalOptions& g) { return run_manifest(g, *a, *out); }};
}

Command add_evict(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "evict", kEvictSummary, kEvictDetails, nullptr);
  return Command{cmd, [a](const GlobalOptions& g) { return for_files(g, *a, "evict", evict, "evicted"); }};
}

Command add_pin(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "pin", kPinSummary, kPinDetails, nullptr);
  return Command{cmd, [a](const GlobalOptions& g) {
                   return for_files(g, *a, "pin", [](Vfs& v, const Node& f) { return v.pin(f, true); }, "pinned");
                 }};
}

Command add_unpin(CLI::App& app) {
  auto [cmd, a] = add_path_command(app, "unpin", kUnpinSummary, kUnpinDetails, nullptr);
  return Command{cmd, [a](const GlobalOptions& g) {
                   return for_files(g, *a, "unpin", [](Vfs& v, const Node& f) { return v.pin(f, false); },
                                    "unpinned");
                 }};
}

}  // namespace objcache::cachectl
