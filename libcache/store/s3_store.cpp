// SPDX-License-Identifier: Apache-2.0
// S3Store: ObjectStore over the S3 REST API. Each logical operation is an Op
// that is signed afresh for every attempt (the signature carries the time),
// classified when it fails, and retried with backoff until its deadline.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <mutex>
#include <random>

#include "objcache/object_store.h"
#include "store/circuit_breaker.h"
#include "store/credentials.h"
#include "store/http_client.h"
#include "store/retry.h"
#include "store/s3_xml.h"
#include "store/sigv4.h"
#include "util/log.h"
#include "util/process.h"

namespace objcache::store {
namespace {

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

struct Endpoint {
  std::string scheme;    // "http" or "https"
  std::string hostport;  // "127.0.0.1:9000"
};

Result<Endpoint> parse_endpoint(const std::string& url, const char* what) {
  Endpoint ep;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    ep.scheme = "https";
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    ep.scheme = "http";
    rest = url.substr(7);
  } else {
    return make_error(Status::InvalidArgument, std::string(what) + " \"" + url +
                                                   "\" must start with http:// or https://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return make_error(Status::InvalidArgument,
                      std::string(what) + " \"" + url + "\" must be scheme://host[:port], with no path");
  }
  ep.hostport = rest;
  return ep;
}

std::string effective_region(const StoreConfig& cfg) {
  if (!cfg.region.empty()) return cfg.region;
  std::string r = getenv_str("AWS_REGION");
  if (r.empty()) r = getenv_str("AWS_DEFAULT_REGION");
  return r.empty() ? "us-east-1" : r;
}

std::string effective_endpoint(const StoreConfig& cfg, const std::string& region) {
  if (!cfg.endpoint.empty()) return cfg.endpoint;
  std::string e = getenv_str("AWS_ENDPOINT_URL_S3");
  if (e.empty()) e = getenv_str("AWS_ENDPOINT_URL");
  return e.empty() ? "https://s3." + region + ".amazonaws.com" : e;
}

std::string encode_query(const std::vector<std::pair<std::string, std::string>>& q) {
  std::string out;
  for (const auto& [k, v] : q) {
    if (!out.empty()) out += '&';
    out += sigv4::uri_encode(k, true) + "=" + sigv4::uri_encode(v, true);
  }
  return out;
}

enum class Target { Write, Read };  // Read ops may go to read_endpoint

// One logical request and its retries.
struct Op {
  std::string method;
  Target target = Target::Write;
  std::string key;  // "" for bucket-level requests
  std::vector<std::pair<std::string, std::string>> query;
  Headers headers;
  std::span<const std::byte> body;
  std::span<std::byte> sink;
  std::function<void(Result<HttpResponse>)> done;
  int attempt = 0;
  bool probe = false;  // the circuit breaker's probe: one attempt, no retries
  std::chrono::steady_clock::time_point deadline;
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point attempt_started;  // of the attempt in flight
  int throttled = 0;  // attempts answered 503 SlowDown or 429
};

class S3Store final : public ObjectStore {
 public:
  static Result<std::unique_ptr<ObjectStore>> create(const StoreConfig& cfg, const std::string& bucket) {
    auto creds = resolve_credentials(cfg.credentials);
    if (!creds) return creds.error();
    std::string region = effective_region(cfg);
    auto ep = parse_endpoint(effective_endpoint(cfg, region), "endpoint");
    if (!ep) return ep.error();
    Endpoint read_ep = *ep;
    if (!cfg.read_endpoint.empty()) {
      auto r = parse_endpoint(cfg.read_endpoint, "read_endpoint");
      if (!r) return r.error();
      read_ep = *r;
    }
    std::unique_ptr<S3Store> s(new S3Store(cfg, bucket, std::move(*creds), region, *ep, read_ep));
    if (auto c = s->client(); c == nullptr) {
      return make_error(Status::IoError, "cannot start the HTTP client");
    }
    return std::unique_ptr<ObjectStore>(std::move(s));
  }

  // The client goes first: its shutdown runs the callbacks of whatever is
  // still in flight, and those use the other members.
  ~S3Store() override { client_.reset(); }

  void shutdown() override {
    std::lock_guard<std::mutex> g(client_mu_);
    // Only this process's client: a parent's thread is not ours to stop.
    if (client_ && client_pid_.load(std::memory_order_relaxed) == proc::self()) client_->shutdown();
  }

  // GETs go to the read endpoint: its breaker says whether reads would go.
  bool reachable() const override {
    const CircuitBreaker& b = read_endpoint_.hostport != endpoint_.hostport ? read_breaker_ : breaker_;
    return !b.open();
  }

  Result<ObjectInfo> head(std::string_view key) override {
    auto op = make_op("HEAD", Target::Read, key);
    auto r = run_sync(op);
    if (!r) return r.error();
    ObjectInfo info;
    info.key = std::string(key);
    info.size = std::strtoull(std::string(r->header("content-length")).c_str(), nullptr, 10);
    info.etag = s3xml::unquote(r->header("etag"));
    info.mtime = s3xml::parse_http_date(r->header("last-modified"));
    return info;
  }

  Result<GetResult> get(const GetRequest& req, std::span<std::byte> out) override {
    std::promise<Result<GetResult>> p;
    auto f = p.get_future();
    get_async(req, out, [&p](Result<GetResult> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  void get_async(const GetRequest& req, std::span<std::byte> out, GetCallback done) override {
    if (req.length == 0 || out.size() < req.length) {
      done(make_error(Status::InvalidArgument, "get: length must be > 0 and fit the buffer"));
      return;
    }
    auto op = make_op("GET", Target::Read, req.key);
    std::uint64_t last = req.offset + req.length - 1;
    op->headers.emplace_back("Range", "bytes=" + std::to_string(req.offset) + "-" + std::to_string(last));
    if (!req.if_match.empty()) op->headers.emplace_back("If-Match", "\"" + req.if_match + "\"");
    op->sink = out.first(req.length);
    std::string where = describe(req.key);
    std::uint64_t offset = req.offset;
    // done runs from on_reply, which holds op: the raw pointer is alive.
    op->done = [done = std::move(done), where, offset, if_match = req.if_match,
                self = op.get()](Result<HttpResponse> r) {
      if (!r) {
        done(r.error());
        return;
      }
      auto g = check_range_reply(*r, offset, if_match, where);
      if (g) {
        g->throttled_attempts = self->throttled;
        g->last_attempt = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - self->attempt_started);
      }
      done(std::move(g));
    };
    start(std::move(op));
  }

  Result<ListPage> list(const ListRequest& req) override {
    auto op = make_op("GET", Target::Write, "");
    op->query.emplace_back("list-type", "2");
    if (!req.prefix.empty()) op->query.emplace_back("prefix", req.prefix);
    if (!req.delimiter.empty()) op->query.emplace_back("delimiter", req.delimiter);
    if (!req.continuation_token.empty()) op->query.emplace_back("continuation-token", req.continuation_token);
    if (!req.start_after.empty()) op->query.emplace_back("start-after", req.start_after);
    op->query.emplace_back("max-keys", std::to_string(req.max_keys));
    auto r = run_sync(op);
    if (!r) return r.error();
    return s3xml::parse_list(r->body);
  }

  Result<std::string> put(std::string_view key, std::span<const std::byte> data) override {
    auto op = make_op("PUT", Target::Write, key);
    op->body = data;
    auto r = run_sync(op);
    if (!r) return r.error();
    return s3xml::unquote(r->header("etag"));
  }

  Result<std::string> create_multipart(std::string_view key) override {
    auto op = make_op("POST", Target::Write, key);
    op->query.emplace_back("uploads", "");
    auto r = run_sync(op);
    if (!r) return r.error();
    return s3xml::parse_upload_id(r->body);
  }

  Result<std::string> upload_part(std::string_view key, std::string_view upload_id, int part_number,
                                  std::span<const std::byte> data) override {
    if (part_number < 1 || part_number > 10000) {
      return make_error(Status::InvalidArgument, "part number must be 1..10000");
    }
    auto op = make_op("PUT", Target::Write, key);
    op->query.emplace_back("partNumber", std::to_string(part_number));
    op->query.emplace_back("uploadId", std::string(upload_id));
    op->body = data;
    auto r = run_sync(op);
    if (!r) return r.error();
    std::string etag = s3xml::unquote(r->header("etag"));
    if (etag.empty()) return make_error(Status::IoError, "UploadPart reply without an ETag");
    return etag;
  }

  void upload_part_async(std::string_view key, std::string_view upload_id, int part_number,
                         std::span<const std::byte> data, EtagCallback done) override {
    if (part_number < 1 || part_number > 10000) {
      done(make_error(Status::InvalidArgument, "part number must be 1..10000"));
      return;
    }
    auto op = make_op("PUT", Target::Write, key);
    op->query.emplace_back("partNumber", std::to_string(part_number));
    op->query.emplace_back("uploadId", std::string(upload_id));
    op->body = data;
    op->done = [done = std::move(done)](Result<HttpResponse> r) {
      if (!r) return done(r.error());
      std::string etag = s3xml::unquote(r->header("etag"));
      if (etag.empty()) return done(make_error(Status::IoError, "UploadPart reply without an ETag"));
      done(std::move(etag));
    };
    start(std::move(op));
  }

  Result<std::string> upload_part_copy(std::string_view dst_key, std::string_view upload_id, int part_number,
                                       std::string_view src_key, std::uint64_t offset,
                                       std::uint64_t length) override {
    if (part_number < 1 || part_number > 10000 || length == 0) {
      return make_error(Status::InvalidArgument, "part number must be 1..10000 and the range not empty");
    }
    auto op = make_op("PUT", Target::Write, dst_key);
    op->query.emplace_back("partNumber", std::to_string(part_number));
    op->query.emplace_back("uploadId", std::string(upload_id));
    op->headers.emplace_back("x-amz-copy-source", "/" + bucket_ + "/" + sigv4::uri_encode_path(src_key));
    op->headers.emplace_back("x-amz-copy-source-range",
                             "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
    auto r = run_sync(op);
    if (!r) return r.error();
    return s3xml::parse_result_etag(r->body, "CopyPartResult");
  }

  Result<std::string> complete_multipart(std::string_view key, std::string_view upload_id,
                                         const std::vector<CompletedPart>& parts) override {
    std::string xml = s3xml::build_complete(parts);
    auto op = make_op("POST", Target::Write, key);
    op->query.emplace_back("uploadId", std::string(upload_id));
    op->headers.emplace_back("Content-Type", "application/xml");
    op->body = std::as_bytes(std::span<const char>(xml.data(), xml.size()));
    auto r = run_sync(op);
    if (!r) return r.error();
    auto etag = s3xml::parse_result_etag(r->body, "CompleteMultipartUploadResult");
    if (!etag || !etag->empty()) return etag;
    // radosgw (16.2) answers the first Complete with an empty <ETag>: the
    // object is whole, so its ETag is what a HEAD says.
    auto info = head(key);
    if (!info) return info.error();
    return info->etag;
  }

  Result<void> abort_multipart(std::string_view key, std::string_view upload_id) override {
    auto op = make_op("DELETE", Target::Write, key);
    op->query.emplace_back("uploadId", std::string(upload_id));
    auto r = run_sync(op);
    if (!r) return r.error();
    return {};
  }

  Result<void> remove(std::string_view key) override {
    auto op = make_op("DELETE", Target::Write, key);
    auto r = run_sync(op);
    if (!r && r.status() != Status::NotFound) return r.error();
    return {};
  }

  Result<std::string> copy(std::string_view src_key, std::string_view dst_key) override {
    auto op = make_op("PUT", Target::Write, dst_key);
    op->headers.emplace_back("x-amz-copy-source", "/" + bucket_ + "/" + sigv4::uri_encode_path(src_key));
    auto r = run_sync(op);
    if (!r) return r.error();
    return s3xml::parse_result_etag(r->body, "CopyObjectResult");
  }

 private:
  S3Store(const StoreConfig& cfg, std::string bucket, ResolvedCredentials creds, std::string region,
          Endpoint ep, Endpoint read_ep)
      : cfg_(cfg),
        bucket_(std::move(bucket)),
        creds_(std::move(creds)),
        region_(std::move(region)),
        endpoint_(std::move(ep)),
        read_endpoint_(std::move(read_ep)) {
    policy_.deadline = cfg_.retry_deadline;
  }

  std::string describe(std::string_view key) const {
    return "s3://" + bucket_ + "/" + std::string(key);
  }

  std::shared_ptr<Op> make_op(std::string method, Target target, std::string_view key) {
    auto op = std::make_shared<Op>();
    op->method = std::move(method);
    op->target = target;
    op->key = std::string(key);
    op->started = std::chrono::steady_clock::now();
    op->deadline = op->started + cfg_.retry_deadline;
    return op;
  }

  Result<HttpResponse> run_sync(const std::shared_ptr<Op>& op) {
    std::promise<Result<HttpResponse>> p;
    auto f = p.get_future();
    op->done = [&p](Result<HttpResponse> r) { p.set_value(std::move(r)); };
    start(op);
    return f.get();
  }

  // The HTTP client of this process. A forked child must not touch the
  // parent's (its thread does not exist there): it builds its own. The pid
  // is proc::self(), which a fork child updates and a vfork child does not:
  // a vfork child shares the parent's memory and threads, so it uses the
  // parent's client (the shim materialises files there before exec).
  HttpClient* client() {
    pid_t pid = proc::self();
    // acquire: pairs with the release below so client_ is seen complete.
    if (client_pid_.load(std::memory_order_acquire) == pid) return client_.get();
    std::lock_guard<std::mutex> g(client_mu_);
    if (client_pid_.load(std::memory_order_relaxed) != pid) {
      if (client_) (void)client_.release();  // the parent's: its thread is not ours to join
      HttpOptions ho;
      ho.connect_timeout = cfg_.connect_timeout;
      ho.stall_timeout = cfg_.stall_timeout;
      ho.max_connections_per_host = std::max(cfg_.prefetch_concurrency, cfg_.upload_concurrency) + 8;
      auto c = HttpClient::create(ho);
      if (!c) {
        OC_ERROR("%s", c.error().describe().c_str());
        return nullptr;
      }
      client_ = std::move(*c);
      client_pid_.store(pid, std::memory_order_release);
    }
    return client_.get();
  }

  HttpRequest build(const Op& op) const {
    const Endpoint& ep = op.target == Target::Read ? read_endpoint_ : endpoint_;
    std::string host = ep.hostport;
    std::string path;
    if (cfg_.addressing == Addressing::Virtual) {
      host = bucket_ + "." + ep.hostport;
      path = "/" + sigv4::uri_encode_path(op.key);
    } else {
      path = "/" + bucket_;
      if (!op.key.empty()) path += "/" + sigv4::uri_encode_path(op.key);
    }
    sigv4::Request sreq;
    sreq.method = op.method;
    sreq.path = path;
    sreq.query = op.query;
    sreq.headers.emplace_back("Host", host);
    for (const auto& h : op.headers) sreq.headers.push_back(h);
    if (!op.body.empty() || op.method == "PUT" || op.method == "POST") {
      sreq.headers.emplace_back("Content-Length", std::to_string(op.body.size()));
    }
    if (!creds_.anonymous) {
      sigv4::Options so;
      so.region = region_;
      so.service = "s3";
      // Over TLS the body is protected in transit; hashing it would cost a
      // pass over every checkpoint byte. Over plain HTTP we sign it.
      if (op.body.empty()) {
        so.payload_hash = std::string(sigv4::kEmptyPayloadHash);
      } else if (ep.scheme == "https") {
        so.payload_hash = std::string(sigv4::kUnsignedPayload);
      } else {
        so.payload_hash = sigv4::sha256_hex(std::string_view(
            reinterpret_cast<const char*>(op.body.data()), op.body.size()));
      }
      sigv4::sign_with_header(sreq, creds_.keys, std::time(nullptr), so);
    }
    HttpRequest hr;
    hr.method = op.method;
    hr.url = ep.scheme + "://" + host + path;
    if (!op.query.empty()) hr.url += "?" + encode_query(op.query);
    for (auto& h : sreq.headers) {
      if (h.first == "Content-Length") continue;  // curl sets it from the body
      hr.headers.push_back(std::move(h));
    }
    hr.body = op.body;
    hr.sink = op.sink;
    hr.deadline = op.deadline;
    return hr;
  }

  // The breaker of the endpoint op goes to (one when both are the same).
  CircuitBreaker& breaker(const Op& op) {
    return op.target == Target::Read && read_endpoint_.hostport != endpoint_.hostport ? read_breaker_ : breaker_;
  }

  void start(std::shared_ptr<Op> op) {
    HttpClient* c = client();
    if (c == nullptr) {
      op->done(make_error(Status::IoError, "no HTTP client"));
      return;
    }
    if (op->attempt == 0) {
      switch (breaker(*op).admit(std::chrono::steady_clock::now())) {
        case CircuitBreaker::Verdict::Go:
          break;
        case CircuitBreaker::Verdict::Probe:
          op->probe = true;
          break;
        case CircuitBreaker::Verdict::FailFast:
          op->done(make_error(Status::Transient, op->method + " " + describe(op->key) +
                                                     ": the store is unreachable (failing at once until it "
                                                     "answers a probe, sent every second)"));
          return;
      }
    }
    HttpRequest req = build(*op);
    op->attempt_started = std::chrono::steady_clock::now();
    c->submit(std::move(req), [this, op](Result<HttpResponse> r) { on_reply(op, std::move(r)); });
  }

  // Runs on the HTTP client's thread.
  void on_reply(const std::shared_ptr<Op>& op, Result<HttpResponse> r) {
    Error err;
    // HttpClient reports transport failures (refused, reset, stalled, past the
    // deadline) as Transient; its other errors are local.
    const bool transport = !r.ok() && r.error().status == Status::Transient;
    if (r) breaker(*op).answered();  // any reply: the store is there
    if (r) {
      if (r->status >= 200 && r->status < 300) {
        op->done(std::move(r));
        return;
      }
      s3xml::S3Error e = s3xml::parse_error(r->body);
      Status st = status_from_http(r->status, e.code);
      std::string msg = op->method + " " + describe(op->key) + ": ";
      msg += e.code.empty() ? "HTTP " + std::to_string(r->status) : e.code;
      if (!e.message.empty()) msg += ": " + e.message;
      if (st == Status::NotFound && e.code.empty()) msg += " (no such key)";
      if (r->status >= 300 && r->status < 400) {
        std::string region = std::string(r->header("x-amz-bucket-region"));
        msg += region.empty() ? " (redirect: check endpoint and region)"
                              : " (the bucket is in region " + region + ")";
      }
      err = make_error(st, msg, r->status);
    } else {
      err = r.error();
    }
    if (transport && op->probe) {
      breaker(*op).unreachable(std::chrono::steady_clock::now());
      err.message += " (the store is still unreachable)";
      op->done(err);
      return;
    }
    if (transport && breaker(*op).open()) {
      // Another request found the store unreachable meanwhile: stop here
      // rather than wait out this request's deadline too.
      err.message += " (the store is unreachable)";
      op->done(err);
      return;
    }
    if (err.status == Status::Throttled) ++op->throttled;
    if (is_retryable(err.status)) {
      double u = 0;
      {
        std::lock_guard<std::mutex> g(rng_mu_);
        u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
      }
      auto wait = backoff(policy_, err.status, op->attempt, u);
      auto now = std::chrono::steady_clock::now();
      if (now + wait < op->deadline) {
        OC_DEBUG("retrying %s %s in %lld ms: %s", op->method.c_str(), describe(op->key).c_str(),
                 static_cast<long long>(wait.count()), err.describe().c_str());
        ++op->attempt;
        if (HttpClient* c = client(); c != nullptr) {
          c->schedule(wait, [this, op] { start(op); });
          return;
        }
      }
      if (transport) breaker(*op).unreachable(now);
      auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(now - op->started).count();
      err.message += " (gave up after " + std::to_string(op->attempt + 1) + " attempts in " +
                     std::to_string(secs / 1000) + "." + std::to_string(secs % 1000 / 100) + "s)";
    }
    // A 404 is an answer, not a failure worth a line (stat asks many).
    if (err.status != Status::NotFound) OC_DEBUG("%s", err.describe().c_str());
    op->done(err);
  }

  // A ranged GET's reply must be exactly the range asked for, as the server
  // says in Content-Range; anything else is an error, never data.
  static Result<GetResult> check_range_reply(const HttpResponse& r, std::uint64_t offset,
                                             const std::string& if_match, const std::string& where) {
    GetResult g;
    g.bytes = r.sink_bytes;
    g.etag = s3xml::unquote(r.header("etag"));
    // Some servers (s3rver among them) ignore If-Match; the reply's ETag
    // still tells whether these bytes belong to the version asked for.
    if (!if_match.empty() && !g.etag.empty() && g.etag != if_match) {
      return make_error(Status::PreconditionFailed,
                        where + ": object changed (ETag " + g.etag + ", expected " + if_match + ")", 412);
    }
    std::string cr(r.header("content-range"));
    if (r.status == 200) {
      // The server ignored Range and sent the whole object; fine only if
      // we asked from 0 and it all fit (the sink refuses more).
      if (offset != 0) return make_error(Status::IoError, where + ": server ignored the Range header");
      g.object_size = g.bytes;
      return g;
    }
    const auto range = s3xml::parse_content_range(cr);
    if (!range || range->first != offset) {
      return make_error(Status::IoError, where + ": bad Content-Range \"" + cr + "\"");
    }
    if (g.bytes != range->last - range->first + 1) {
      return make_error(Status::IoError, where + ": got " + std::to_string(g.bytes) +
                                             " bytes for Content-Range \"" + cr + "\"");
    }
    g.object_size = range->total;
    return g;
  }

  StoreConfig cfg_;
  std::string bucket_;
  ResolvedCredentials creds_;
  std::string region_;
  Endpoint endpoint_;
  Endpoint read_endpoint_;
  RetryPolicy policy_;

  CircuitBreaker breaker_;       // the endpoint
  CircuitBreaker read_breaker_;  // read_endpoint, when it is another host

  std::mutex client_mu_;
  std::atomic<pid_t> client_pid_{0};
  std::unique_ptr<HttpClient> client_;

  std::mutex rng_mu_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace
}  // namespace objcache::store

namespace objcache {

using namespace store;

Result<std::unique_ptr<ObjectStore>> create_s3_store(const StoreConfig& cfg, const std::string& bucket) {
  try {
    return S3Store::create(cfg, bucket);
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("S3 store: ") + e.what());
  }
}

Result<StoreDescription> describe_s3_store(const StoreConfig& cfg) {
  StoreDescription d;
  d.region = effective_region(cfg);
  d.endpoint = effective_endpoint(cfg, d.region);
  d.read_endpoint = cfg.read_endpoint.empty() ? d.endpoint : cfg.read_endpoint;
  auto creds = resolve_credentials(cfg.credentials);
  if (!creds) return creds.error();
  d.credentials = creds->origin;
  if (!creds->anonymous) d.credentials += " (key id " + mask_secret(creds->keys.access_key_id) + ")";
  return d;
}

}  // namespace objcache
