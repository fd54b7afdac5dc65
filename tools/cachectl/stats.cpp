// SPDX-License-Identifier: Apache-2.0
// cachectl stats: the counters every process of the cache keeps in shared
// memory, summed, overall and per mount; as text, JSON or Prometheus.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "objcache/page_cache.h"
#include "staging.h"

namespace objcache::cachectl {
namespace {

constexpr const char* kStatsSummary =
    "the cache's counters summed over its processes, overall and per mount, and the working set against "
    "capacity";
constexpr const char* kStatsDetails =
    "Prints the cache's counters summed over every process that used it:\n"
    "hits by tier, misses, the hit ratio, bytes served and fetched, evictions,\n"
    "errors, bytes uploaded to writable mounts, RAM and spill use against\n"
    "capacity, overall and per mount; the bytes staged for upload; and the\n"
    "working set: the distinct bytes read since the cache was made (an\n"
    "estimate), against capacity, so you can tell whether the data fits.\n";

struct StatsOptions {
  Output output = Output::Text;
  int watch_seconds = 0;  // 0: print once
};

// --watch takes a whole number of seconds > 0.
std::string check_seconds(const std::string& s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) {
    return "needs a number of seconds > 0, got '" + s + "'";
  }
  return {};
}

struct Field {
  const char* name;
  std::uint64_t CacheCounters::*member;
  bool totals_only = false;  // metadata requests are not any one mount's
};
constexpr Field kFields[] = {
    {"ram_hits", &CacheCounters::ram_hits},
    {"spill_hits", &CacheCounters::spill_hits},
    {"misses", &CacheCounters::misses},
    {"served_bytes", &CacheCounters::served_bytes},
    {"remote_bytes", &CacheCounters::remote_bytes},
    {"remote_requests", &CacheCounters::remote_requests},
    {"prefetched_bytes", &CacheCounters::prefetched_bytes},
    {"evictions", &CacheCounters::evictions},
    {"errors", &CacheCounters::errors},
    {"uploaded_bytes", &CacheCounters::uploaded_bytes},
    {"upload_requests", &CacheCounters::upload_requests},
    {"uploads_failed", &CacheCounters::uploads_failed},
    {"list_requests", &CacheCounters::list_requests, true},
    {"head_requests", &CacheCounters::head_requests, true},
};

double hit_ratio(const CacheCounters& c) {
  std::uint64_t all = c.ram_hits + c.spill_hits + c.misses;
  return all == 0 ? 0.0 : static_cast<double>(c.ram_hits + c.spill_hits) / static_cast<double>(all);
}

nlohmann::json counters_json(const CacheCounters& c, bool of_mount) {
  nlohmann::json j;
  for (const Field& f : kFields) {
    if (!(of_mount && f.totals_only)) j[f.name] = c.*f.member;
  }
  j["hit_ratio"] = hit_ratio(c);
  return j;
}

// The adaptive limit as this configuration's processes apply it: the
// node's stored limit (kFetchStartConcurrency until it first moved), at
// most prefetch_concurrency.
int fetch_concurrency(const Config& cfg, const CacheStats& s) {
  const int stored = s.fetch_limit == 0 ? kFetchStartConcurrency : static_cast<int>(s.fetch_limit);
  return std::min(stored, std::max(1, cfg.store.prefetch_concurrency));
}

std::string to_json(const Config& cfg, const CacheStats& s, const StagedTotal& staged) {
  nlohmann::json j = counters_json(s.total, false);
  j["ram_used_bytes"] = s.ram_used_bytes;
  j["ram_capacity_bytes"] = s.ram_capacity_bytes;
  j["spill_used_bytes"] = s.spill_used_bytes;
  j["spill_capacity_bytes"] = s.spill_capacity_bytes;
  j["index_entries"] = s.index_entries;
  j["working_set_bytes"] = s.working_set_bytes;
  j["capacity_bytes"] = s.ram_capacity_bytes + s.spill_capacity_bytes;
  j["gets_in_flight"] = s.gets_in_flight;
  j["fetch_concurrency"] = fetch_concurrency(cfg, s);
  j["fetch_concurrency_reason"] = s.fetch_limit_reason;
  j["fetch_concurrency_changed"] = s.fetch_limit_changed;
  j["processes"] = s.processes;
  j["staged_bytes"] = staged.bytes;
  j["staged_files"] = staged.files;
  j["cache"] = cfg.cache.name;
  j["segment"] = s.segment_path;
  j["mounts"] = nlohmann::json::array();
  for (std::size_t m = 0; m < cfg.mounts.size(); ++m) {
    nlohmann::json mj = m < s.mounts.size() ? counters_json(s.mounts[m], true) : counters_json({}, true);
    mj["path"] = cfg.mounts[m].path;
    mj["source"] = cfg.mounts[m].source_text;
    j["mounts"].push_back(mj);
  }
  return j.dump(2);
}

std::string to_prometheus(const Config& cfg, const CacheStats& s, const StagedTotal& staged) {
  std::string out;
  char line[512];
  for (const Field& f : kFields) {
    bool bytes = std::string(f.name).find("bytes") != std::string::npos;
    std::snprintf(line, sizeof line, "# TYPE objcache_%s%s counter\n", f.name, bytes ? "" : "_total");
    out += line;
    std::snprintf(line, sizeof line, "objcache_%s%s{cache=\"%s\"} %llu\n", f.name, bytes ? "" : "_total",
                  cfg.cache.name.c_str(), static_cast<unsigned long long>(s.total.*f.member));
    out += line;
    for (std::size_t m = 0; !f.totals_only && m < cfg.mounts.size() && m < s.mounts.size(); ++m) {
      std::snprintf(line, sizeof line, "objcache_%s%s{cache=\"%s\",mount=\"%s\"} %llu\n", f.name,
                    bytes ? "" : "_total", cfg.cache.name.c_str(), cfg.mounts[m].path.c_str(),
                    static_cast<unsigned long long>(s.mounts[m].*f.member));
      out += line;
    }
  }
  for (auto [name, v] : {std::pair{"ram_used_bytes", s.ram_used_bytes},
                         std::pair{"ram_capacity_bytes", s.ram_capacity_bytes},
                         std::pair{"spill_used_bytes", s.spill_used_bytes},
                         std::pair{"spill_capacity_bytes", s.spill_capacity_bytes},
                         std::pair{"working_set_bytes", s.working_set_bytes},
                         std::pair{"gets_in_flight", std::uint64_t{s.gets_in_flight}},
                         std::pair{"fetch_concurrency", std::uint64_t(fetch_concurrency(cfg, s))},
                         std::pair{"staged_bytes", staged.bytes}, std::pair{"staged_files", staged.files}}) {
    std::snprintf(line, sizeof line, "# TYPE objcache_%s gauge\nobjcache_%s{cache=\"%s\"} %llu\n", name, name,
                  cfg.cache.name.c_str(), static_cast<unsigned long long>(v));
    out += line;
  }
  return out;
}

std::string to_text(const Config& cfg, const CacheStats& s, const StagedTotal& staged, const std::string& staging_dir) {
  std::string out;
  char line[512];
  auto pct = [](std::uint64_t a, std::uint64_t b) { return b == 0 ? 0.0 : 100.0 * static_cast<double>(a) / static_cast<double>(b); };
  std::snprintf(line, sizeof line, "cache %s (%s), %u processes attached\n", cfg.cache.name.c_str(),
                s.segment_path.c_str(), s.processes);
  out += line;
  std::snprintf(line, sizeof line, "RAM    %s of %s used (%.0f%%)\n", format_size(s.ram_used_bytes).c_str(),
                format_size(s.ram_capacity_bytes).c_str(), pct(s.ram_used_bytes, s.ram_capacity_bytes));
  out += line;
  if (s.spill_capacity_bytes > 0) {
    std::snprintf(line, sizeof line, "spill  %s of %s used (%.0f%%)\n", format_size(s.spill_used_bytes).c_str(),
                  format_size(s.spill_capacity_bytes).c_str(), pct(s.spill_used_bytes, s.spill_capacity_bytes));
  } else {
    std::snprintf(line, sizeof line, "spill  disabled\n");
  }
  out += line;
  const std::uint64_t capacity = s.ram_capacity_bytes + s.spill_capacity_bytes;
  std::snprintf(line, sizeof line, "working set  %s read since the cache was made, against %s of capacity: %s\n",
                format_size(s.working_set_bytes).c_str(), format_size(capacity).c_str(),
                s.working_set_bytes <= s.ram_capacity_bytes ? "fits in RAM"
                : s.working_set_bytes <= capacity           ? "fits with the spill tier"
                                                            : "does NOT fit (expect misses every epoch)");
  out += line;
  if (staged.files > 0) {
    std::snprintf(line, sizeof line, "staged  %s in %llu file%s not yet in the bucket, in %s (cachectl uploads)\n",
                  format_size(staged.bytes).c_str(), static_cast<unsigned long long>(staged.files),
                  staged.files == 1 ? "" : "s", staging_dir.c_str());
  } else {
    std::snprintf(line, sizeof line, "staged  nothing waiting for upload\n");
  }
  out += line;
  auto block = [&](const char* title, const CacheCounters& c, bool writes) {
    std::snprintf(line, sizeof line,
                  "%s\n  hits       %llu RAM, %llu spill, %llu misses (hit ratio %.1f%%)\n"
                  "  served     %s   fetched %s in %llu requests   prefetched %s\n"
                  "  evictions  %llu   errors %llu\n",
                  title, static_cast<unsigned long long>(c.ram_hits), static_cast<unsigned long long>(c.spill_hits),
                  static_cast<unsigned long long>(c.misses), 100.0 * hit_ratio(c),
                  format_size(c.served_bytes).c_str(), format_size(c.remote_bytes).c_str(),
                  static_cast<unsigned long long>(c.remote_requests), format_size(c.prefetched_bytes).c_str(),
                  static_cast<unsigned long long>(c.evictions), static_cast<unsigned long long>(c.errors));
    out += line;
    if (!writes && c.upload_requests == 0) return;  // a read-only mount: nothing to say
    std::snprintf(line, sizeof line, "  uploaded   %s in %llu requests   %llu uploads failed\n",
                  format_size(c.uploaded_bytes).c_str(), static_cast<unsigned long long>(c.upload_requests),
                  static_cast<unsigned long long>(c.uploads_failed));
    out += line;
  };
  bool any_writable = false;
  for (const MountConfig& m : cfg.mounts) any_writable = any_writable || m.writable;
  block("all mounts", s.total, any_writable);
  std::snprintf(line, sizeof line, "  metadata   %llu LIST and %llu HEAD requests (in the requests above)\n",
                static_cast<unsigned long long>(s.total.list_requests),
                static_cast<unsigned long long>(s.total.head_requests));
  out += line;
  std::string when;
  if (s.fetch_limit_changed > 0) {
    const long long ago = static_cast<long long>(std::time(nullptr)) - s.fetch_limit_changed;
    when = ", " + std::to_string(std::max(0LL, ago)) + " s ago";
  }
  std::snprintf(line, sizeof line,
                "  prefetch   at most %d GETs in flight now (prefetch_concurrency %d is the ceiling): %s%s; "
                "%u in flight\n",
                fetch_concurrency(cfg, s), cfg.store.prefetch_concurrency, s.fetch_limit_reason.c_str(),
                when.c_str(), s.gets_in_flight);
  out += line;
  for (std::size_t m = 0; m < cfg.mounts.size() && m < s.mounts.size(); ++m) {
    std::string title = cfg.mounts[m].path + " <- " + cfg.mounts[m].source_text;
    block(title.c_str(), s.mounts[m], cfg.mounts[m].writable);
  }
  return out;
}

int run_stats(const GlobalOptions& g, const StatsOptions& o) {
  auto cfg = load_global_config(g);
  if (!cfg) {
    std::fprintf(stderr, "cachectl: %s\n", cfg.error().message.c_str());
    return 2;
  }
  auto cache = attach_cache(*cfg);
  if (!cache) {
    if (cache.status() != Status::NotFound) {
      std::fprintf(stderr, "cachectl: %s\n", cache.error().describe().c_str());
      return 1;
    }
    // Nothing cached yet: report zeros, so scripts see the same fields.
    std::fprintf(stderr, "cachectl: %s; all counters are 0\n", cache.error().message.c_str());
  }
  const std::string staging_dir = staging_dir_of(cfg->cache);
  for (;;) {
    CacheStats s = cache ? (*cache)->stats() : CacheStats{};
    if (!cache) s.mounts.resize(cfg->mounts.size());
    const StagedTotal staged = staged_total(staging_dir);
    std::string out = o.output == Output::Json         ? to_json(*cfg, s, staged) + "\n"
                      : o.output == Output::Prometheus ? to_prometheus(*cfg, s, staged)
                                                       : to_text(*cfg, s, staged, staging_dir);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    if (o.watch_seconds <= 0) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(o.watch_seconds));
    if (o.output == Output::Text) std::fputs("\n", stdout);
  }
}

}  // namespace

Command add_stats(CLI::App& app) {
  CLI::App* cmd = add_command(app, "stats", kStatsSummary, kStatsDetails);
  auto o = std::make_shared<StatsOptions>();
  CLI::Option* json = cmd->add_flag_callback(
      "--json", [o] { o->output = Output::Json; }, "one JSON object (fields as in the README)");
  cmd->add_flag_callback("--prometheus", [o] { o->output = Output::Prometheus; }, "Prometheus text exposition format")
      ->excludes(json);
  cmd->add_option("--watch", o->watch_seconds, "print again every SECONDS seconds until interrupted")
      ->type_name("SECONDS")
      ->check(check_seconds);
  return Command{cmd, [o](const GlobalOptions& g) { return run_stats(g, *o); }};
}

}  // namespace objcache::cachectl
