// SPDX-License-Identifier: Apache-2.0
// HttpClient: many HTTP requests in flight on one event-loop thread (curl
// multi), connections pooled per host, DNS and TLS sessions shared. It moves
// bytes and reports transport failures; it knows nothing of S3 or signing.
// The only file that includes curl is http_client.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "objcache/result.h"

namespace objcache::store {

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds stall_timeout{10000};  // no byte for this long ends the attempt
  int max_connections_per_host = 64;
  std::string ca_bundle;  // "" = AWS_CA_BUNDLE, else the system's
};

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  Headers headers;
  std::span<const std::byte> body;  // must stay valid until the callback ran
  // When non-empty, a 2xx reply's body is written here and may not exceed it
  // (more is an error); otherwise it is collected in HttpResponse::body.
  std::span<std::byte> sink;
  // The caller's deadline: past it, an attempt that moves no byte (a stalled
  // or unresponsive server) ends at once with a Transient error, and the
  // connect timeout never runs past it. A transfer still moving bytes is
  // never cut.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct HttpResponse {
  int status = 0;
  Headers headers;            // names lowercased, in arrival order
  std::string body;           // when the request had no sink, or the reply was not 2xx
  std::uint64_t sink_bytes = 0;

  // The value of the first header called name (lowercase), or "".
  std::string_view header(std::string_view name) const;
};

using HttpCallback = std::function<void(Result<HttpResponse>)>;

class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> create(const HttpOptions& opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Queues req; done runs once, on the client's thread. Any HTTP status is a
  // response; a transport failure (refused, reset, stalled, a body shorter
  // than its Content-Length) is an Error with Status Transient.
  void submit(HttpRequest req, HttpCallback done);
  // Runs fn on the client's thread after delay (retry backoff uses it).
  void schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  // Stops the client's thread: transfers in flight end with an error (their
  // callbacks run first), later submits fail at once. Idempotent; the
  // destructor calls it. Must not be called from the client's thread.
  void shutdown();
  // Blocking form of submit. Must not be called from the client's thread.
  Result<HttpResponse> perform(HttpRequest req);

  // The most transfers that were in flight at once since creation.
  std::size_t peak_in_flight() const;

  struct Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace objcache::store
