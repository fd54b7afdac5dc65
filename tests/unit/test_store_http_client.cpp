// SPDX-License-Identifier: Apache-2.0
// HttpClient against a small loopback HTTP server that misbehaves on
// purpose: slow replies (to see requests overlap), kept-alive connections
// (to see reuse), and bodies cut short, reset or stalled (to see that they
// are errors, never data).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <doctest/doctest.h>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/http_client.h"

using namespace objcache;
using namespace objcache::store;
using namespace std::chrono_literals;

namespace {

enum class Mode { Slow, ShortBody, Reset, Stall, Oversize, Trickle };

class FaultServer {
 public:
  explicit FaultServer(Mode mode, std::chrono::milliseconds delay = 0ms) : mode_(mode), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 128) == 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~FaultServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    std::lock_guard<std::mutex> g(mu_);
    for (auto& t : workers_) t.join();
  }
  std::string url(const std::string& path = "/x") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_.load(); }
  // Waits until n requests have arrived; false after 30 s.
  bool wait_requests(int n) {
    std::unique_lock<std::mutex> lk(requests_mu_);
    return requests_cv_.wait_for(lk, 30s, [&] { return requests_ >= n; });
  }
  int max_concurrent() const { return max_concurrent_.load(); }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      connections_++;
      std::lock_guard<std::mutex> g(mu_);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }
  static bool read_request(int c) {
    std::string buf;
    char tmp[4096];
    while (buf.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    return true;
  }
  static void send_all(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  void serve(int c) {
    while (read_request(c)) {
      {
        std::lock_guard<std::mutex> g(requests_mu_);
        ++requests_;
      }
      requests_cv_.notify_all();
      int now = ++busy_;
      int prev = max_concurrent_.load();
      while (now > prev && !max_concurrent_.compare_exchange_weak(prev, now)) {
      }
      std::this_thread::sleep_for(delay_);  // pace: a server that takes delay_ to answer
      std::string body(1000, 'a');
      bool keep = false;
      switch (mode_) {
        case Mode::Slow:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body);
          keep = true;
          break;
        case Mode::ShortBody:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body.substr(0, 500));
          break;
        case Mode::Reset: {
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body.substr(0, 500));
          linger l{1, 0};  // close with RST
          ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          break;
        }
        case Mode::Stall:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + body.substr(0, 10));
          // pace: a server that stalls mid-body (up to 4 s, or until stopped).
          for (int i = 0; i < 40 && !stop_; ++i) std::this_thread::sleep_for(100ms);
          break;
        case Mode::Trickle:
          // 1000 bytes, 100 every 200 ms: a slow transfer that keeps moving.
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
          for (int i = 0; i < 10 && !stop_; ++i) {
            send_all(c, body.substr(0, 100));
            std::this_thread::sleep_for(200ms);  // pace: the server's sending rate
          }
          break;
        case Mode::Oversize:
          send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + body + body);
          keep = true;
          break;
      }
      --busy_;
      if (!keep) break;
    }
    ::close(c);
  }

  Mode mode_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> busy_{0};
  std::atomic<int> max_concurrent_{0};
  std::thread acceptor_;
  std::mutex requests_mu_;
  std::condition_variable requests_cv_;
  int requests_ = 0;  // guarded by requests_mu_
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

std::unique_ptr<HttpClient> make_client(std::chrono::milliseconds stall = 10000ms) {
  HttpOptions o;
  o.stall_timeout = stall;
  o.connect_timeout = 2000ms;
  auto c = HttpClient::create(o);
  REQUIRE(c.ok());
  return std::move(*c);
}

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.method = "GET";
  r.url = url;
  return r;
}

}  // namespace

TEST_CASE("many requests are in flight at once") {
  FaultServer srv(Mode::Slow, 300ms);
  auto client = make_client();
  constexpr int kN = 16;
  std::vector<std::promise<Result<HttpResponse>>> ps(kN);
  for (int i = 0; i < kN; ++i) {
    client->submit(get(srv.url()), [&ps, i](Result<HttpResponse> r) { ps[static_cast<size_t>(i)].set_value(std::move(r)); });
  }
  for (auto& p : ps) {
    auto r = p.get_future().get();
    REQUIRE(r.ok());
    CHECK(r->status == 200);
    CHECK(r->body.size() == 1000);
  }
  // A client that sent them one by one would show 1 here.
  CHECK(srv.max_concurrent() >= kN / 2);
  CHECK(client->peak_in_flight() >= static_cast<size_t>(kN / 2));
}

TEST_CASE("sequential requests reuse one connection") {
  FaultServer srv(Mode::Slow);
  auto client = make_client();
  for (int i = 0; i < 10; ++i) {
    auto r = client->perform(get(srv.url()));
    REQUIRE(r.ok());
    CHECK(r->status == 200);
  }
  CHECK(srv.connections() == 1);
}

TEST_CASE("a body into a sink lands in the caller's buffer") {
  FaultServer srv(Mode::Slow);
  auto client = make_client();
  std::vector<std::byte> buf(1000);
  auto req = get(srv.url());
  req.sink = buf;
  auto r = client->perform(std::move(req));
  REQUIRE(r.ok());
  CHECK(r->sink_bytes == 1000);
  CHECK(r->body.empty());
  CHECK(buf[999] == std::byte{'a'});
}

TEST_CASE("a body shorter than its Content-Length is an error") {
  FaultServer srv(Mode::ShortBody);
  auto client = make_client();
  auto r = client->perform(get(srv.url()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::Transient);
}

TEST_CASE("a connection reset mid-body is an error") {
  FaultServer srv(Mode::Reset);
  auto client = make_client();
  auto r = client->perform(get(srv.url()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::Transient);
}

TEST_CASE("a stalled transfer ends after the stall timeout") {
  FaultServer srv(Mode::Stall);
  auto client = make_client(1000ms);
  auto r = client->perform(get(srv.url()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::Transient);
}

TEST_CASE("more bytes than the sink holds is an error, not an overrun") {
  FaultServer srv(Mode::Oversize);
  auto client = make_client();
  std::vector<std::byte> buf(1000);
  auto req = get(srv.url());
  req.sink = buf;
  auto r = client->perform(std::move(req));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::IoError);
  CHECK(r.error().message.find("more than") != std::string::npos);
}

TEST_CASE("a refused connection is a transient error") {
  int port = 0;
  {
    FaultServer srv(Mode::Slow);
    port = std::stoi(srv.url().substr(17));
  }
  auto client = make_client();
  auto r = client->perform(get("http://127.0.0.1:" + std::to_string(port) + "/x"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::Transient);
}

TEST_CASE("scheduled work runs after its delay, in order") {
  auto client = make_client();
  std::mutex mu;
  std::vector<int> order;
  std::promise<void> done;
  auto start = std::chrono::steady_clock::now();
  client->schedule(200ms, [&] {
    std::lock_guard<std::mutex> g(mu);
    order.push_back(2);
    done.set_value();
  });
  client->schedule(50ms, [&] {
    std::lock_guard<std::mutex> g(mu);
    order.push_back(1);
  });
  done.get_future().wait();
  CHECK(std::chrono::steady_clock::now() - start >= 200ms);
  std::lock_guard<std::mutex> g(mu);
  CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("destroying the client fails what is in flight, exactly once") {
  FaultServer srv(Mode::Stall);
  std::atomic<int> calls{0};
  {
    auto client = make_client(5000ms);
    for (int i = 0; i < 4; ++i) client->submit(get(srv.url()), [&](Result<HttpResponse> r) {
      CHECK_FALSE(r.ok());
      calls++;
    });
    REQUIRE(srv.wait_requests(4));  // all four are in flight
  }
  CHECK(calls.load() == 4);
}

TEST_CASE("past its deadline a stalled attempt ends at once, not after stall_timeout") {
  // The store stopped (SIGSTOP) mid-reply: each read used to wait out the
  // 10 s stall_timeout even with a 5 s retry_deadline.
  FaultServer srv(Mode::Stall);
  auto client = make_client(30000ms);  // a stall alone would take 30 s
  HttpRequest req = get(srv.url());
  const auto start = std::chrono::steady_clock::now();
  req.deadline = start + 1000ms;
  auto r = client->perform(std::move(req));
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().status == Status::Transient);
  CHECK(r.error().message.find("deadline") != std::string::npos);
  // A correctness bound (the deadline is a promise), far from the 30 s stall.
  CHECK(took < 10s);
}

TEST_CASE("a transfer still moving bytes is not cut at the deadline") {
  FaultServer srv(Mode::Trickle);  // 2 s to send its body, bytes all along
  auto client = make_client();
  HttpRequest req = get(srv.url());
  req.deadline = std::chrono::steady_clock::now() + 300ms;
  auto r = client->perform(std::move(req));
  REQUIRE_MESSAGE(r.ok(), r.error().describe());
  CHECK(r->status == 200);
  CHECK(r->body.size() == 1000);
}
