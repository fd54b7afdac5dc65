// SPDX-License-Identifier: Apache-2.0
// ObjectStore: the small interface between the cache and a bucket, and the
// factory for its S3 implementation. Keys are relative to the bucket. Every
// call returns a Result; none throws. Thread-safe: any thread may call any
// method at any time.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/config.h"
#include "objcache/export.h"
#include "objcache/result.h"

namespace objcache {

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;        // without quotes
  std::int64_t mtime = 0;  // seconds since the epoch (Last-Modified)
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;           // "" or "/"
  std::string continuation_token;  // from the previous page
  std::string start_after;
  int max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  std::string next_continuation_token;
  bool truncated = false;
};

struct GetRequest {
  std::string key;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // bytes wanted, > 0; sent as Range: bytes=offset-(offset+length-1)
  std::string if_match;      // ETag the object must still have ("" = any)
};

struct GetResult {
  std::uint64_t bytes = 0;        // bytes written to the buffer (less than asked at end of object)
  std::uint64_t object_size = 0;  // from Content-Range
  std::string etag;
  // How the store answered, for the fetcher's adaptive limit: attempts
  // refused as throttling (503 SlowDown, 429) before this answer, and how
  // long the answering attempt took (0: not measured).
  int throttled_attempts = 0;
  std::chrono::microseconds last_attempt{0};
};

struct CompletedPart {
  int number = 0;  // 1..10000
  std::string etag;
};

using GetCallback = std::function<void(Result<GetResult>)>;
using EtagCallback = std::function<void(Result<std::string>)>;

class OBJCACHE_API ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Size, ETag and mtime of key; NotFound if absent.
  virtual Result<ObjectInfo> head(std::string_view key) = 0;
  // Reads the range into out (out.size() >= req.length). Returns exactly the
  // bytes the server holds in that range, or an error: never a short body
  // passed off as data.
  virtual Result<GetResult> get(const GetRequest& req, std::span<std::byte> out) = 0;
  // As get(), without blocking: done runs once on a store thread, must not
  // block, and out must stay valid until it runs.
  virtual void get_async(const GetRequest& req, std::span<std::byte> out, GetCallback done) = 0;
  // One page of ListObjectsV2.
  virtual Result<ListPage> list(const ListRequest& req) = 0;
  // Writes a whole object; returns its ETag.
  virtual Result<std::string> put(std::string_view key, std::span<const std::byte> data) = 0;

  // Multipart upload: create returns the upload id; each part returns its ETag.
  virtual Result<std::string> create_multipart(std::string_view key) = 0;
  virtual Result<std::string> upload_part(std::string_view key, std::string_view upload_id,
                                          int part_number, std::span<const std::byte> data) = 0;
  // As upload_part(), without blocking: done runs once (on a store thread,
  // or here for stores without one), must not block, and data must stay
  // valid until it runs.
  virtual void upload_part_async(std::string_view key, std::string_view upload_id, int part_number,
                                 std::span<const std::byte> data, EtagCallback done) {
    done(upload_part(key, upload_id, part_number, data));
  }
  virtual Result<std::string> complete_multipart(std::string_view key, std::string_view upload_id,
                                                 const std::vector<CompletedPart>& parts) = 0;
  virtual Result<void> abort_multipart(std::string_view key, std::string_view upload_id) = 0;

  // Deleting a missing key succeeds (S3 semantics).
  virtual Result<void> remove(std::string_view key) = 0;
  // Server-side copy within the bucket (CopyObject; S3 takes it up to 5 GiB);
  // returns the new ETag.
  virtual Result<std::string> copy(std::string_view src_key, std::string_view dst_key) = 0;
  // One part of a multipart upload copied from bytes [offset, offset +
  // length) of src_key (UploadPartCopy: how objects over 5 GiB are copied).
  virtual Result<std::string> upload_part_copy(std::string_view dst_key, std::string_view upload_id,
                                               int part_number, std::string_view src_key, std::uint64_t offset,
                                               std::uint64_t length) {
    (void)dst_key, (void)upload_id, (void)part_number, (void)src_key, (void)offset, (void)length;
    return make_error(Status::Unsupported, "this store cannot copy parts");
  }

  // For process exit: stops background work; requests in flight end with
  // an error (their callbacks run), later ones fail at once.
  virtual void shutdown() {}
  // false while reads fail at once because the store stopped answering
  // (its circuit breaker is open); true again once it answers. Cheap: one
  // atomic load, no request.
  virtual bool reachable() const { return true; }
};

// Connection facts of a store, with secrets masked, for `cachectl check`.
struct StoreDescription {
  std::string endpoint;       // effective, after AWS_ENDPOINT_URL and defaults
  std::string read_endpoint;  // effective
  std::string region;
  std::string credentials;    // where they came from, key id masked: "env (AKIA****MPLE)"
};

// An S3 (or S3-compatible: OSS, MinIO, ...) store for one bucket. Fails when
// the settings are unusable (bad endpoint, unreadable credentials file, ...).
OBJCACHE_API Result<std::unique_ptr<ObjectStore>> create_s3_store(const StoreConfig& cfg,
                                                     const std::string& bucket);
OBJCACHE_API Result<StoreDescription> describe_s3_store(const StoreConfig& cfg);

}  // namespace objcache
