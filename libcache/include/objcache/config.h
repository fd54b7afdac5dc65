// SPDX-License-Identifier: Apache-2.0
// The configuration of objcache: the TOML schema of README's "Configuration"
// section as plain structs, and the one loader that reads it. Loading never
// throws; a bad file is an Error naming the file, the line and the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "objcache/export.h"
#include "objcache/log.h"
#include "objcache/result.h"

namespace objcache {

// Limits load_config enforces; tools that build a Config in code can check
// against the same numbers.
inline constexpr std::uint64_t kMinCacheMemory = 16ull << 20;  // bytes; 16 MiB
inline constexpr std::uint64_t kMinPageSize = 64ull << 10;     // bytes; 64 KiB
inline constexpr std::uint64_t kMaxPageSize = 64ull << 20;     // bytes; 64 MiB
inline constexpr int kMaxConcurrency = 1024;                   // prefetch/upload/list_concurrency

enum class Eviction { Clock, None };
enum class Addressing { Path, Virtual };
enum class Prefetch { None, File, Directory };

struct CacheConfig {
  std::string name = "default";                 // processes with the same name share pages
  std::uint64_t memory = 4ull << 30;            // bytes, RAM tier budget; default 4 GiB
  std::string spill_dir = "/var/tmp/objcache";  // SSD tier directory; "" disables it
  std::uint64_t spill_size = 64ull << 30;       // bytes; default 64 GiB
  std::uint64_t page_size = 1ull << 20;         // bytes, power of two; default 1 MiB
  Eviction eviction = Eviction::Clock;
  // Written bytes wait here until their object is in the bucket; ""
  // = <spill_dir>/staging, else /var/tmp/objcache/staging. Never RAM only.
  std::string staging_dir;
};

// Where the node-wide limit of background GETs starts before it adapts
// (between 4 and prefetch_concurrency): fill/gate.h.
inline constexpr int kFetchStartConcurrency = 32;

// Settings for talking to the store. [store] gives the defaults; a [[mount]]
// may override any of the connection keys for itself.
struct StoreConfig {
  std::string endpoint;       // "" = AWS_ENDPOINT_URL, else AWS's regional endpoint
  std::string read_endpoint;  // "" = endpoint; GETs only (an accelerator)
  std::string region;         // "" = AWS_REGION, else "us-east-1"
  Addressing addressing = Addressing::Path;
  std::string credentials = "env";  // "env" | "anonymous" | "profile:NAME" | "file:PATH"
  int prefetch_concurrency = 256;   // ceiling of GETs in flight per node for prefetch (adapts below it)
  int upload_concurrency = 16;      // multipart parts in flight per upload
  int list_concurrency = 16;        // LISTs in flight per process listing large directories
  std::chrono::milliseconds connect_timeout{5000};  // TCP+TLS connect; default 5s
  std::chrono::milliseconds stall_timeout{10000};   // no byte moved for this long: retry; default 10s
  std::chrono::milliseconds retry_deadline{30000};  // give up retrying after this; default 30s
};

struct SourceUri {
  std::string scheme;  // "s3" or "oss" (a synonym)
  std::string bucket;
  std::string prefix;  // "" or ends with '/'
};

struct MountConfig {
  std::string path;   // absolute local prefix, normalized, no trailing '/'
  std::string source_text;  // as written, for messages
  SourceUri source;
  bool writable = false;
  std::chrono::milliseconds metadata_ttl{300000};  // 0 = never revalidate; default 5m
  Prefetch prefetch = Prefetch::Directory;
  // "" = list the bucket; else a local file naming every object of the
  // mount (meta/manifest.h): listings and stat come from it, never LIST
  // or HEAD. Read-only mounts only.
  std::string manifest;
  StoreConfig store;  // [store] with this mount's overrides applied
};

struct Config {
  std::string path;  // the file it came from ("" when built in code)
  CacheConfig cache;
  StoreConfig store;
  std::vector<MountConfig> mounts;
  LogConfig log;  // objcache/log.h
};

// Reads and validates the TOML file at path. Unknown keys are errors.
// The error (Status::ConfigError) reads "FILE:LINE: key 'K': what was
// expected, got WHAT"; K is "cache.memory" or "mount[2].prefetch", where
// mount[1] is the first [[mount]] in the file.
OBJCACHE_API Result<Config> load_config(const std::string& path);

// Parses TOML text as if read from the file named display_path.
OBJCACHE_API Result<Config> parse_config(const std::string& text, const std::string& display_path);

// OBJCACHE_CONFIG, else ~/.config/objcache/config.toml, else
// /etc/objcache/config.toml; nullopt when none of them exists.
OBJCACHE_API std::optional<std::string> find_config_path();

// "512MiB", "4GiB", "1.5GiB", "100KB", "4096" (bytes). Binary (KiB/MiB/GiB/TiB)
// and decimal (KB/MB/GB/TB) units; "B" or no unit means bytes.
OBJCACHE_API Result<std::uint64_t> parse_size(const std::string& text);
// "30s", "5m", "1h", "250ms", "0". A bare number is seconds.
OBJCACHE_API Result<std::chrono::milliseconds> parse_duration(const std::string& text);
// "s3://bucket/prefix/" or "oss://bucket/prefix"; the prefix gains a '/'.
OBJCACHE_API Result<SourceUri> parse_source(const std::string& text);

OBJCACHE_API std::string_view to_string(Eviction e);
OBJCACHE_API std::string_view to_string(Addressing a);
OBJCACHE_API std::string_view to_string(Prefetch p);
OBJCACHE_API std::string_view to_string(LogLevel l);

// The human-readable size "4GiB", "512MiB", "1.5KiB".
OBJCACHE_API std::string format_size(std::uint64_t bytes);
OBJCACHE_API std::string format_duration(std::chrono::milliseconds d);

}  // namespace objcache
