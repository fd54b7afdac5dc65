// SPDX-License-Identifier: Apache-2.0
#include "support/s3_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <stdexcept>
#include <thread>

namespace objcache::test {

bool S3Server::radosgw_selected() {
  const char* v = std::getenv("OBJCACHE_TEST_S3");
  return v != nullptr && std::string_view(v) == "radosgw";
}

S3Server::S3Server(S3ServerOptions opts) {
  std::string data = dir_.file("data");
  ::mkdir(data.c_str(), 0700);
  std::vector<std::string> argv_s;
  struct stat st {};
  radosgw_ = radosgw_selected();
  if (radosgw_) {
    // Ceph's radosgw (tests/s3server/radosgw.py): a single-node cluster of
    // its own, which verifies signatures and implements If-Match,
    // AbortMultipartUpload and conditional PUTs.
    if (::stat("/usr/bin/radosgw", &st) != 0) {
      throw std::runtime_error("OBJCACHE_TEST_S3=radosgw but /usr/bin/radosgw is not installed: run 'make deps'");
    }
    argv_s = {"/usr/bin/python3", source_dir() + "/s3server/radosgw.py", "--dir", data};
  } else {
    std::string modules = source_dir() + "/s3server/node_modules/s3rver";
    if (::stat(modules.c_str(), &st) != 0) {
      throw std::runtime_error("s3rver is not installed in " + source_dir() +
                               "/s3server/node_modules: run 'make deps'");
    }
    argv_s = {"node", "--openssl-legacy-provider", source_dir() + "/s3server/start.js", "--dir", data};
    if (opts.verify_signatures) argv_s.push_back("--sigv4");
  }
  for (const auto& b : opts.buckets) {
    argv_s.push_back("--bucket");
    argv_s.push_back(b);
  }
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  stdin_fd_ = in_pipe[1];

  // Wait for {"port": N} on its stdout.
  std::string line;
  // radosgw brings up a mon, an OSD and the gateway: ~2 s, more on a
  // loaded machine or under a sanitizer.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(radosgw_ ? 180 : 30);
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{out_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[256];
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(out_pipe[0]);
  auto pos = line.find("\"port\":");
  if (pos == std::string::npos) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw std::runtime_error(radosgw_ ? "radosgw did not start (tests/s3server/radosgw.py; its stderr says why)"
                                      : "the S3 test server did not start (is node installed? run 'make deps')");
  }
  port_ = std::stoi(line.substr(pos + 7));
}

S3Server::~S3Server() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  if (pid_ <= 0) return;
  // radosgw.py stops its daemons and removes its directory first.
  const int rounds = radosgw_ ? 500 : 50;
  for (int i = 0; i < rounds; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    // poll: the server's exit after its stdin closed, for at most 1 s (10 s for radosgw).
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

std::string S3Server::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string S3Server::credentials_file(const std::string& secret) const {
  static std::atomic<int> n{0};  // threads of one test make their configs at once
  return dir_.write("credentials-" + std::to_string(n.fetch_add(1)),
                    std::string("[default]\naws_access_key_id = ") + kAccessKey +
                        "\naws_secret_access_key = " + secret + "\n",
                    0600);
}

StoreConfig S3Server::store_config() const {
  StoreConfig c;
  c.endpoint = endpoint();
  c.region = "us-east-1";
  c.credentials = "file:" + credentials_file(kSecretKey);
  c.retry_deadline = std::chrono::milliseconds(5000);
  return c;
}

int unused_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

}  // namespace objcache::test
