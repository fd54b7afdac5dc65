// SPDX-License-Identifier: Apache-2.0
#include "store/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_set>

#include "util/log.h"

namespace objcache::store {
namespace {

// Bodies we keep in memory (error replies, listings) are small; a runaway
// reply is cut here rather than exhausting the host's memory.
constexpr std::size_t kMaxCollectedBody = 64u << 20;

// DNS answers and TLS sessions are shared by every client of the process
// (s3fs does the same), so a new connection skips both round trips.
struct SharedState {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
};

void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<SharedState*>(user)->locks[static_cast<std::size_t>(data)].lock();
}
void share_unlock(CURL*, curl_lock_data data, void* user) {
  static_cast<SharedState*>(user)->locks[static_cast<std::size_t>(data)].unlock();
}

SharedState* shared_state() {
  // Deliberately leaked: curl handles may still use it during exit.
  static SharedState* state = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto* s = new SharedState;
    s->share = curl_share_init();
    if (s->share != nullptr) {
      curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
      curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
      curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
      curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
      curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    return s;
  }();
  return state;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error transport_error(CURLcode code, const char* detail, const std::string& url) {
  std::string what = detail != nullptr && *detail != '\0' ? detail : curl_easy_strerror(code);
  // Strip the query string: presigned URLs carry signatures.
  std::string where = url.substr(0, url.find('?'));
  std::string msg = where + ": " + what;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_AGAIN:
      return make_error(Status::Transient, msg);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return make_error(Status::InvalidArgument, msg);
    default:
      return make_error(Status::IoError, msg);
  }
}

}  // namespace

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

struct Transfer {
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  HttpRequest req;
  HttpCallback done;
  HttpResponse resp;
  std::size_t upload_offset = 0;
  bool overflow = false;
  bool truncated = false;
  bool past_deadline = false;  // ended by req.deadline (on_progress)
  // Bytes moved and when they last grew (on_progress).
  curl_off_t moved = 0;
  std::chrono::steady_clock::time_point last_progress;
  char errbuf[CURL_ERROR_SIZE] = {};
};

struct HttpClient::Impl {
  HttpOptions opts;
  CURLM* multi = nullptr;
  std::thread loop;

  std::mutex mu;  // guards the queues and stop
  std::deque<std::unique_ptr<Transfer>> incoming;
  struct Timer {
    std::chrono::steady_clock::time_point when;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Timer& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::uint64_t timer_seq = 0;
  bool stop = false;

  // Touched by the loop thread only.
  std::vector<CURL*> idle_easy;
  std::unordered_set<Transfer*> active;  // transfers added to multi
  std::atomic<std::size_t> peak{0};  // relaxed: a statistic

  ~Impl() {
    for (CURL* e : idle_easy) curl_easy_cleanup(e);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  void run();
  void start(std::unique_ptr<Transfer> t);
  void finish(Transfer* t, CURLcode code);
  CURL* take_easy();
};

namespace {

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp.headers.clear();  // a new response (after 100-continue or a redirect)
    return len;
  }
  std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    t->resp.headers.emplace_back(lower(line.substr(0, colon)), std::string(v));
  }
  return len;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
  if (!t->req.sink.empty() && code >= 200 && code < 300) {
    if (t->resp.sink_bytes + len > t->req.sink.size()) {
      t->overflow = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    std::memcpy(t->req.sink.data() + t->resp.sink_bytes, data, len);
    t->resp.sink_bytes += len;
    return len;
  }
  if (t->resp.body.size() + len > kMaxCollectedBody) {
    t->truncated = true;
    return 0;
  }
  t->resp.body.append(data, len);
  return len;
}

std::size_t on_upload(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::size_t room = size * n;
  std::size_t left = t->req.body.size() - t->upload_offset;
  std::size_t k = std::min(room, left);
  std::memcpy(buf, t->req.body.data() + t->upload_offset, k);
  t->upload_offset += k;
  return k;
}

// Called by curl about once a second while a transfer is idle, and as bytes
// move. Past the request's deadline, a transfer that has moved nothing for
// kDeadlineGrace is ended: the caller gets its error within the deadline
// (plus about a second), not after a whole stall_timeout.
constexpr auto kDeadlineGrace = std::chrono::milliseconds(500);

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal;
  (void)ultotal;
  auto* t = static_cast<Transfer*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (dlnow + ulnow != t->moved) {
    t->moved = dlnow + ulnow;
    t->last_progress = now;
    return 0;
  }
  if (now >= t->req.deadline && now - t->last_progress >= kDeadlineGrace) {
    t->past_deadline = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

// curl rewinds the upload when it must resend (a redirect or a reused
// connection that turned out closed).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > t->req.body.size())
    return CURL_SEEKFUNC_CANTSEEK;
  t->upload_offset = static_cast<std::size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

}  // namespace

CURL* HttpClient::Impl::take_easy() {
  if (!idle_easy.empty()) {
    CURL* e = idle_easy.back();
    idle_easy.pop_back();
    curl_easy_reset(e);
    return e;
  }
  return curl_easy_init();
}

void HttpClient::Impl::start(std::unique_ptr<Transfer> t) {
  CURL* e = take_easy();
  if (e == nullptr) {
    t->done(make_error(Status::IoError, "curl_easy_init failed"));
    return;
  }
  t->easy = e;
  const HttpRequest& r = t->req;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, shared_state()->share);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  auto connect = opts.connect_timeout;
  if (r.deadline != std::chrono::steady_clock::time_point::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - std::chrono::steady_clock::now());
    connect = std::clamp(left, std::chrono::milliseconds(1), connect);
  }
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect.count()));
  t->last_progress = std::chrono::steady_clock::now();
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, t.get());
  // A stall (no progress for stall_timeout) ends the attempt; the retry
  // policy above decides what happens next.
  long stall_s = static_cast<long>((opts.stall_timeout.count() + 999) / 1000);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, std::max(1L, stall_s));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  if (!opts.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, opts.ca_bundle.c_str());

  if (r.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT") {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else if (r.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, reinterpret_cast<const char*>(r.body.data()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }

  for (const auto& [k, v] : r.headers) {
    std::string line = k + ": " + v;
    t->header_list = curl_slist_append(t->header_list, line.c_str());
  }
  // No "Expect: 100-continue" round trip, and no form content type on POST.
  t->header_list = curl_slist_append(t->header_list, "Expect:");
  if (r.method == "POST") t->header_list = curl_slist_append(t->header_list, "Content-Type:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);

  CURLMcode mc = curl_multi_add_handle(multi, e);
  if (mc != CURLM_OK) {
    curl_slist_free_all(t->header_list);
    idle_easy.push_back(e);
    t->done(make_error(Status::IoError, std::string("curl_multi_add_handle: ") +
                                            curl_multi_strerror(mc)));
    return;
  }
  active.insert(t.get());
  if (active.size() > peak.load(std::memory_order_relaxed))
    peak.store(active.size(), std::memory_order_relaxed);
  t.release();  // owned by the easy handle's CURLOPT_PRIVATE until finish()
}

void HttpClient::Impl::finish(Transfer* raw, CURLcode code) {
  std::unique_ptr<Transfer> t(raw);
  curl_multi_remove_handle(multi, t->easy);
  curl_slist_free_all(t->header_list);
  active.erase(raw);
  Result<HttpResponse> result = [&]() -> Result<HttpResponse> {
    if (t->overflow) {
      return make_error(Status::IoError, t->req.url.substr(0, t->req.url.find('?')) +
                                             ": the server sent more than the " +
                                             std::to_string(t->req.sink.size()) +
                                             " bytes asked for");
    }
    if (t->truncated) {
      return make_error(Status::IoError, "reply body over " +
                                             std::to_string(kMaxCollectedBody) + " bytes");
    }
    if (t->past_deadline) {
      return make_error(Status::Transient, t->req.url.substr(0, t->req.url.find('?')) +
                                               ": no answer before the retry deadline");
    }
    if (code != CURLE_OK) return transport_error(code, t->errbuf, t->req.url);
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    t->resp.status = static_cast<int>(status);
    return std::move(t->resp);
  }();
  // A handle that failed mid-transfer may hold a broken connection; curl
  // closes those itself, so the handle can be reused either way.
  idle_easy.push_back(t->easy);
  if (idle_easy.size() > 256) {
    curl_easy_cleanup(idle_easy.back());
    idle_easy.pop_back();
  }
  t->done(std::move(result));
}

void HttpClient::Impl::run() {
  for (;;) {
    std::deque<std::unique_ptr<Transfer>> batch;
    std::vector<std::function<void()>> due;
    int wait_ms = 1000;
    {
      std::lock_guard<std::mutex> g(mu);
      if (stop) break;
      batch.swap(incoming);
      auto now = std::chrono::steady_clock::now();
      while (!timers.empty() && timers.top().when <= now) {
        due.push_back(std::move(const_cast<Timer&>(timers.top()).fn));
        timers.pop();
      }
      if (!timers.empty()) {
        auto d = std::chrono::duration_cast<std::chrono::milliseconds>(timers.top().when - now);
        wait_ms = static_cast<int>(std::clamp<std::int64_t>(d.count() + 1, 0, 1000));
      }
    }
    for (auto& fn : due) fn();
    for (auto& t : batch) start(std::move(t));

    int still = 0;
    curl_multi_perform(multi, &still);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      finish(t, m->data.result);
    }
    if (!due.empty() || !batch.empty()) continue;  // callbacks may have queued work
    curl_multi_poll(multi, nullptr, 0, wait_ms, nullptr);
  }
  // Shutting down: fail whatever is still in flight or queued.
  std::vector<Transfer*> left_over(active.begin(), active.end());
  for (Transfer* t : left_over) finish(t, CURLE_ABORTED_BY_CALLBACK);
  // Pending retries run now: with stop set, their submit fails at once, so
  // every callback still runs exactly once.
  std::deque<std::unique_ptr<Transfer>> queued;
  std::vector<std::function<void()>> pending;
  {
    std::lock_guard<std::mutex> g(mu);
    queued.swap(incoming);
    while (!timers.empty()) {
      pending.push_back(std::move(const_cast<Timer&>(timers.top()).fn));
      timers.pop();
    }
  }
  for (auto& t : queued) t->done(make_error(Status::IoError, "HTTP client shut down"));
  for (auto& fn : pending) fn();
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpClient>> HttpClient::create(const HttpOptions& opts) {
  try {
    SharedState* shared = shared_state();
    if (shared->share == nullptr) return make_error(Status::IoError, "curl_share_init failed");
    auto impl = std::make_unique<Impl>();
    impl->opts = opts;
    if (impl->opts.ca_bundle.empty()) {
      const char* ca = std::getenv("AWS_CA_BUNDLE");
      if (ca != nullptr) impl->opts.ca_bundle = ca;
    }
    impl->multi = curl_multi_init();
    if (impl->multi == nullptr) return make_error(Status::IoError, "curl_multi_init failed");
    long per_host = std::max(1, opts.max_connections_per_host);
    curl_multi_setopt(impl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    curl_multi_setopt(impl->multi, CURLMOPT_MAXCONNECTS, per_host * 2);
    Impl* raw = impl.get();
    impl->loop = std::thread([raw] { raw->run(); });
    return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("HTTP client: ") + e.what());
  }
}

HttpClient::~HttpClient() { shutdown(); }

void HttpClient::shutdown() {
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->stop = true;
  }
  curl_multi_wakeup(impl_->multi);
  if (impl_->loop.joinable()) impl_->loop.join();
}

void HttpClient::submit(HttpRequest req, HttpCallback done) {
  auto t = std::make_unique<Transfer>();
  t->req = std::move(req);
  t->done = std::move(done);
  bool stopped = false;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    stopped = impl_->stop;
    if (!stopped) impl_->incoming.push_back(std::move(t));
  }
  if (stopped) {
    t->done(make_error(Status::IoError, "HTTP client shut down"));
    return;
  }
  curl_multi_wakeup(impl_->multi);
}

void HttpClient::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    if (!impl_->stop) {
      queued = true;
      impl_->timers.push(Impl::Timer{std::chrono::steady_clock::now() + delay,
                                     impl_->timer_seq++, std::move(fn)});
    }
  }
  // After shutdown fn runs at once; its submit fails, so callbacks still run.
  if (!queued) {
    fn();
    return;
  }
  curl_multi_wakeup(impl_->multi);
}

Result<HttpResponse> HttpClient::perform(HttpRequest req) {
  std::promise<Result<HttpResponse>> p;
  auto f = p.get_future();
  submit(std::move(req), [&p](Result<HttpResponse> r) { p.set_value(std::move(r)); });
  return f.get();
}

std::size_t HttpClient::peak_in_flight() const { return impl_->peak.load(std::memory_order_relaxed); }

}  // namespace objcache::store
