// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "store/credentials.h"
#include "support/temp_dir.h"

using namespace objcache;
using namespace objcache::store;
using objcache::test::TempDir;

namespace {

// Sets the environment for one test and restores it after.
class EnvGuard {
 public:
  EnvGuard() {
    for (const char* n : kNames) {
      const char* v = std::getenv(n);
      saved_.emplace_back(n, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
  }
  ~EnvGuard() {
    for (auto& [n, v] : saved_) {
      if (v) ::setenv(n, v->c_str(), 1);
      else ::unsetenv(n);
    }
  }

 private:
  static constexpr const char* kNames[] = {
      "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OSS_ACCESS_KEY_ID",
      "OSS_ACCESS_KEY_SECRET", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "HOME"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

}  // namespace

TEST_CASE("env credentials: AWS names, then OSS names") {
  EnvGuard env;
  TempDir home;
  ::setenv("HOME", home.path().c_str(), 1);
  CHECK(resolve_credentials("env").status() == Status::AccessDenied);

  ::setenv("OSS_ACCESS_KEY_ID", "ossid", 1);
  ::setenv("OSS_ACCESS_KEY_SECRET", "osssecret", 1);
  auto oss = resolve_credentials("env");
  REQUIRE(oss.ok());
  CHECK(oss->keys.access_key_id == "ossid");
  CHECK(oss->keys.secret_access_key == "osssecret");

  ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "topsecret", 1);
  ::setenv("AWS_SESSION_TOKEN", "tok", 1);
  auto aws = resolve_credentials("env");
  REQUIRE(aws.ok());
  CHECK(aws->keys.access_key_id == "AKIDEXAMPLE");
  CHECK(aws->keys.session_token == "tok");
  CHECK(aws->origin.find("topsecret") == std::string::npos);
}

TEST_CASE("anonymous needs nothing") {
  auto a = resolve_credentials("anonymous");
  REQUIRE(a.ok());
  CHECK(a->anonymous);
}

TEST_CASE("profile:NAME reads ~/.aws/credentials, and AWS_PROFILE under env") {
  EnvGuard env;
  TempDir home;
  ::setenv("HOME", home.path().c_str(), 1);
  home.write(".aws/credentials",
             "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n"
             "[work]\n aws_access_key_id=W \naws_secret_access_key= WS\naws_session_token = WT\n",
             0600);
  auto w = resolve_credentials("profile:work");
  REQUIRE(w.ok());
  CHECK(w->keys.access_key_id == "W");
  CHECK(w->keys.secret_access_key == "WS");
  CHECK(w->keys.session_token == "WT");

  auto missing = resolve_credentials("profile:nope");
  CHECK(missing.status() == Status::NotFound);
  CHECK(missing.error().message.find("nope") != std::string::npos);

  ::setenv("AWS_PROFILE", "default", 1);
  auto d = resolve_credentials("env");
  REQUIRE(d.ok());
  CHECK(d->keys.access_key_id == "D");
}

TEST_CASE("profiles from ~/.aws/config use [profile NAME]") {
  EnvGuard env;
  TempDir home;
  ::setenv("HOME", home.path().c_str(), 1);
  home.write(".aws/config", "[profile ci]\naws_access_key_id = C\naws_secret_access_key = CS\n", 0600);
  auto c = resolve_credentials("profile:ci");
  REQUIRE(c.ok());
  CHECK(c->keys.access_key_id == "C");
}

TEST_CASE("file: AWS INI and the OSS connector's JSON") {
  EnvGuard env;
  TempDir dir;
  std::string ini = dir.write("aws.ini", "[default]\naws_access_key_id = A\naws_secret_access_key = AS\n");
  auto a = resolve_credentials("file:" + ini);
  REQUIRE(a.ok());
  CHECK(a->keys.access_key_id == "A");

  std::string json = dir.write("oss.json",
                               "{\"AccessKeyId\": \"LTAI\", \"AccessKeySecret\": \"sec\", "
                               "\"SecurityToken\": \"st\", \"Expiration\": \"2030-01-01T00:00:00Z\"}");
  auto o = resolve_credentials("file:" + json);
  REQUIRE(o.ok());
  CHECK(o->keys.access_key_id == "LTAI");
  CHECK(o->keys.secret_access_key == "sec");
  CHECK(o->keys.session_token == "st");

  std::string bad = dir.write("bad.json", "{\"AccessKeyId\": 5}");
  auto b = resolve_credentials("file:" + bad);
  CHECK_FALSE(b.ok());
  CHECK(b.error().message.find("AccessKeySecret") != std::string::npos);

  CHECK(resolve_credentials("file:" + dir.file("absent")).status() == Status::NotFound);
}

TEST_CASE("a credentials file that group or others can read is refused") {
  EnvGuard env;
  TempDir dir;
  std::string p = dir.write("creds.json", "{\"AccessKeyId\": \"id\", \"AccessKeySecret\": \"verysecret\"}", 0644);
  auto r = resolve_credentials("file:" + p);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status() == Status::AccessDenied);
  CHECK(r.error().message.find("chmod 600") != std::string::npos);
  CHECK(r.error().message.find("0644") != std::string::npos);
  CHECK(r.error().message.find("verysecret") == std::string::npos);

  std::string g = dir.write("creds2.json", "{\"AccessKeyId\": \"id\", \"AccessKeySecret\": \"s\"}", 0640);
  CHECK(resolve_credentials("file:" + g).status() == Status::AccessDenied);
}

TEST_CASE("a bad spec and masking") {
  CHECK(resolve_credentials("keys please").status() == Status::InvalidArgument);
  CHECK(mask_secret("AKIAIOSFODNN7EXAMPLE") == "AKIA************MPLE");
  CHECK(mask_secret("short") == "*****");
}
