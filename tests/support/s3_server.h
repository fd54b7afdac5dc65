// SPDX-License-Identifier: Apache-2.0
// A real S3-compatible server (s3rver from npm) on a free 127.0.0.1 port in
// a temp dir, for the lifetime of one object. It dies with the test: its
// stdin is our pipe, and it exits when the pipe closes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "objcache/config.h"
#include "support/temp_dir.h"

namespace objcache::test {

struct S3ServerOptions {
  // true: @20minutes/s3rver, which verifies SigV4 (a wrong secret gets 403).
  // false: s3rver 3.7.1, which checks only the access key id.
  bool verify_signatures = false;
  std::vector<std::string> buckets = {"test"};
};

class S3Server {
 public:
  static constexpr const char* kAccessKey = "S3RVER";
  static constexpr const char* kSecretKey = "S3RVER";

  explicit S3Server(S3ServerOptions opts = {});  // throws std::runtime_error when it cannot start
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  int port() const { return port_; }
  std::string endpoint() const;  // "http://127.0.0.1:PORT"
  // A [store] for this server, with credentials from a 0600 file in our dir.
  StoreConfig store_config() const;
  // Writes an AWS INI credentials file (0600) with the given secret.
  std::string credentials_file(const std::string& secret) const;
  const std::string& dir() const { return dir_.path(); }
  // Ceph's radosgw instead of s3rver: OBJCACHE_TEST_S3=radosgw (the tests
  // that run against both servers; meson registers them twice).
  static bool radosgw_selected();
  bool is_radosgw() const { return radosgw_; }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
  bool radosgw_ = false;
};

// A loopback port nothing listens on (bound, then closed).
int unused_port();

}  // namespace objcache::test
