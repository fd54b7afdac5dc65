// SPDX-License-Identifier: Apache-2.0
// SigV4 against the 38 cases of the AWS test suite (tests/data/aws-sigv4-
// test-suite/v4, both header and query signing, every intermediate step),
// then the S3 rules the suite does not cover and AWS's own S3 examples.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/sigv4.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using objcache::store::sigv4::Credentials;
using objcache::store::sigv4::Options;
using objcache::store::sigv4::Request;
namespace sigv4 = objcache::store::sigv4;

namespace {

// A request.txt split into what the signer sees plus the raw pieces needed
// to print the signed request back exactly as the suite's files show it.
struct ParsedRequest {
  Request request;
  std::string raw_query;  // as on the request line, without '?'
  std::string body;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view raw) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t end = raw.find('&', pos);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view param = raw.substr(pos, end - pos);
    std::size_t eq = param.find('=');
    if (!param.empty()) {
      if (eq == std::string_view::npos)
        out.emplace_back(percent_decode(param), "");
      else
        out.emplace_back(percent_decode(param.substr(0, eq)), percent_decode(param.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

// Raw HTTP/1.1: "METHOD target HTTP/1.1", headers (a line starting with
// space or tab continues the previous value; the fold is kept as "\n..." so
// the signer's whitespace rules are what is under test), blank line, body.
// The target may hold raw spaces ("/example space/"), so the method ends at
// the first space and the version starts at the last.
bool parse_request(const std::string& text, ParsedRequest& out) {
  std::size_t pos = 0;
  auto next_line = [&](std::string& line) {
    if (pos > text.size()) return false;
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    pos = end + 1;
    return true;
  };
  std::string line;
  if (!next_line(line)) return false;
  std::size_t first_space = line.find(' ');
  std::size_t last_space = line.rfind(' ');
  if (first_space == std::string::npos || last_space <= first_space) return false;
  out.request.method = line.substr(0, first_space);
  std::string target = line.substr(first_space + 1, last_space - first_space - 1);
  std::size_t question = target.find('?');
  out.request.path = target.substr(0, question);
  if (question != std::string::npos) {
    out.raw_query = target.substr(question + 1);
    out.request.query = parse_query(out.raw_query);
  }
  while (next_line(line)) {
    if (line.empty()) {
      if (pos < text.size()) out.body = text.substr(pos);
      break;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (out.request.headers.empty()) return false;
      out.request.headers.back().second.append("\n").append(line);
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) return false;
    out.request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  return true;
}

// Prints a signed request in the suite's format. Query parameters the
// signer appended are encoded after the request's own raw query string.
std::string print_request(const ParsedRequest& original, const Request& signed_req) {
  std::string query = original.raw_query;
  for (std::size_t i = original.request.query.size(); i < signed_req.query.size(); ++i) {
    if (!query.empty()) query.push_back('&');
    query.append(sigv4::uri_encode(signed_req.query[i].first, true)).append("=");
    query.append(sigv4::uri_encode(signed_req.query[i].second, true));
  }
  std::string out = signed_req.method + " " + signed_req.path;
  if (!query.empty()) out.append("?").append(query);
  out.append(" HTTP/1.1\n");
  for (const auto& [name, value] : signed_req.headers)
    out.append(name).append(":").append(value).append("\n");
  out.append("\n").append(original.body);
  return out;
}

std::time_t parse_iso8601(const std::string& s) {
  std::tm tm{};
  char z = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 ||
      z != 'Z')
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return timegm(&tm);
}

std::string read_if_exists(const fs::path& p, bool& exists) {
  exists = fs::exists(p);
  return exists ? objcache::test::read_file(p.string()) : std::string();
}

const std::string* find_query_param(const Request& r, std::string_view name) {
  for (const auto& [n, v] : r.query)
    if (n == name) return &v;
  return nullptr;
}

const std::string* find_header(const Request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return &v;
  return nullptr;
}

// "" when absent, so a CHECK fails instead of dereferencing null.
std::string header_value(const Request& r, std::string_view name) {
  const std::string* v = find_header(r, name);
  return v ? *v : std::string();
}

std::string query_value(const Request& r, std::string_view name) {
  const std::string* v = find_query_param(r, name);
  return v ? *v : std::string();
}

int count_header(const Request& r, std::string_view name) {
  return static_cast<int>(std::count_if(r.headers.begin(), r.headers.end(),
                                        [&](const auto& h) { return h.first == name; }));
}

// Line n (0-based) of a canonical request.
std::string line_of(const std::string& text, int n) {
  std::size_t pos = 0;
  for (int i = 0; i < n; ++i) pos = text.find('\n', pos) + 1;
  return text.substr(pos, text.find('\n', pos) - pos);
}

struct SuiteCase {
  std::string name;
  fs::path dir;
};

std::vector<SuiteCase> list_suite() {
  fs::path root = fs::path(objcache::test::source_dir()) / "data/aws-sigv4-test-suite/v4";
  std::vector<SuiteCase> cases;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory()) cases.push_back({entry.path().filename().string(), entry.path()});
  std::sort(cases.begin(), cases.end(),
            [](const SuiteCase& a, const SuiteCase& b) { return a.name < b.name; });
  return cases;
}

constexpr std::size_t kSuiteCases = 38;

}  // namespace

TEST_CASE("sigv4: the AWS test suite, all 38 cases, header and query signing") {
  std::vector<SuiteCase> cases = list_suite();
  // A missing or moved folder must fail, not pass with zero cases.
  REQUIRE(cases.size() == kSuiteCases);

  std::size_t header_passed = 0, query_passed = 0, query_cases = 0;
  for (const SuiteCase& c : cases) {
    CAPTURE(c.name);

    ParsedRequest parsed;
    bool parsed_ok =
        parse_request(objcache::test::read_file((c.dir / "request.txt").string()), parsed);
    CHECK(parsed_ok);
    if (!parsed_ok) continue;

    auto ctx = nlohmann::json::parse(objcache::test::read_file((c.dir / "context.json").string()));
    Credentials creds;
    creds.access_key_id = ctx["credentials"]["access_key_id"].get<std::string>();
    creds.secret_access_key = ctx["credentials"]["secret_access_key"].get<std::string>();
    creds.session_token = ctx["credentials"].value("token", std::string());
    std::time_t t = parse_iso8601(ctx["timestamp"].get<std::string>());
    REQUIRE(t > 0);
    bool sign_body = ctx.value("sign_body", false);

    // The generic-service rules: normalize as the case says, encode the
    // path again; the payload hash is always the body's, but only
    // sign_body puts it in an x-amz-content-sha256 header.
    Options opts;
    opts.region = ctx["region"].get<std::string>();
    opts.service = ctx["service"].get<std::string>();
    opts.normalize_path = ctx.value("normalize", true);
    opts.double_encode_path = true;
    opts.payload_hash = sigv4::sha256_hex(parsed.body);
    opts.add_content_sha256_header = sign_body;
    opts.sign_session_token = !ctx.value("omit_session_token", false);

    {  // Signing with the Authorization header.
      bool have = false;
      std::string want_canonical = read_if_exists(c.dir / "header-canonical-request.txt", have);
      REQUIRE(have);
      std::string want_sts =
          objcache::test::read_file((c.dir / "header-string-to-sign.txt").string());
      std::string want_sig = objcache::test::read_file((c.dir / "header-signature.txt").string());
      std::string want_signed =
          objcache::test::read_file((c.dir / "header-signed-request.txt").string());

      Request req = parsed.request;
      std::string canonical = sigv4::sign_with_header(req, creds, t, opts);
      std::string sts = sigv4::string_to_sign(canonical, t, opts);
      std::string sig = sigv4::signature(sigv4::signing_key(creds.secret_access_key, t, opts), sts);
      CHECK(canonical == want_canonical);
      CHECK(sts == want_sts);
      CHECK(sig == want_sig);
      CHECK(print_request(parsed, req) == want_signed);
      const std::string* auth = find_header(req, "Authorization");
      REQUIRE(auth != nullptr);
      CHECK(auth->ends_with("Signature=" + want_sig));
      // The standalone step agrees with what sign_with_header signed
      // (Authorization is never part of it), unless the token is unsigned.
      if (opts.sign_session_token) CHECK(sigv4::canonical_request(req, opts) == want_canonical);
      if (canonical == want_canonical && sts == want_sts && sig == want_sig &&
          print_request(parsed, req) == want_signed)
        ++header_passed;
    }

    {  // Presigned (query-string) signing.
      bool have = false;
      std::string want_canonical = read_if_exists(c.dir / "query-canonical-request.txt", have);
      if (!have) continue;
      ++query_cases;
      std::string want_sts =
          objcache::test::read_file((c.dir / "query-string-to-sign.txt").string());
      std::string want_sig = objcache::test::read_file((c.dir / "query-signature.txt").string());
      bool have_signed = false;
      std::string want_signed = read_if_exists(c.dir / "query-signed-request.txt", have_signed);

      Options qopts = opts;
      qopts.add_content_sha256_header = false;
      Request req = parsed.request;
      std::int64_t expires = ctx.value("expiration_in_seconds", std::int64_t{3600});
      sigv4::sign_with_query(req, creds, t, expires, qopts);

      const std::string* got_sig = find_query_param(req, "X-Amz-Signature");
      REQUIRE(got_sig != nullptr);
      CHECK(*got_sig == want_sig);
      if (have_signed) CHECK(print_request(parsed, req) == want_signed);

      // Rebuild what was signed with the public steps: the request as
      // signed minus X-Amz-Signature (and minus an unsigned token).
      Request unsigned_req = req;
      std::erase_if(unsigned_req.query, [&](const auto& p) {
        return p.first == "X-Amz-Signature" ||
               (!qopts.sign_session_token && p.first == "X-Amz-Security-Token");
      });
      std::string canonical = sigv4::canonical_request(unsigned_req, qopts);
      std::string sts = sigv4::string_to_sign(canonical, t, qopts);
      std::string sig =
          sigv4::signature(sigv4::signing_key(creds.secret_access_key, t, qopts), sts);
      CHECK(canonical == want_canonical);
      CHECK(sts == want_sts);
      CHECK(sig == want_sig);
      if (*got_sig == want_sig && canonical == want_canonical && sts == want_sts &&
          (!have_signed || print_request(parsed, req) == want_signed))
        ++query_passed;
    }
  }
  MESSAGE("suite cases passed: header ", header_passed, "/", cases.size(), ", query ", query_passed,
          "/", query_cases);
  CHECK(header_passed == kSuiteCases);
  CHECK(query_passed == query_cases);
}

// ---------------------------------------------------------------------------
// S3 rules and known answers from the AWS documentation.

namespace {

constexpr const char* kDocAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* kDocSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// What S3 requests use: no normalization, no second encoding, and the
// payload hash sent and signed as x-amz-content-sha256.
Options s3_options(std::string payload_hash = std::string(sigv4::kUnsignedPayload)) {
  Options o;
  o.region = "us-east-1";
  o.service = "s3";
  o.normalize_path = false;
  o.double_encode_path = false;
  o.payload_hash = std::move(payload_hash);
  o.add_content_sha256_header = true;
  return o;
}

Request s3_get(std::string path) {
  Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  return r;
}

Credentials doc_credentials(std::string token = {}) {
  return Credentials{kDocAccessKey, kDocSecretKey, std::move(token)};
}

// 2013-05-24T00:00:00Z, the time of every example in the S3 docs.
std::time_t doc_time() { return parse_iso8601("2013-05-24T00:00:00Z"); }

}  // namespace

TEST_CASE("sigv4: amz_date, amz_day and the hash helpers") {
  std::time_t t = parse_iso8601("2015-08-30T12:36:00Z");
  CHECK(sigv4::amz_date(t) == "20150830T123600Z");
  CHECK(sigv4::amz_day(t) == "20150830");
  CHECK(sigv4::amz_date(0) == "19700101T000000Z");
  CHECK(sigv4::sha256_hex("") == sigv4::kEmptyPayloadHash);
  CHECK(sigv4::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::uint8_t bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  CHECK(sigv4::hex(bytes, sizeof(bytes)) == "000fa5ff");
  CHECK(sigv4::hex(bytes, 0).empty());
}

TEST_CASE("sigv4: signing key matches the AWS documentation example") {
  // "Examples of how to derive a signing key for Signature Version 4":
  // 20120215, us-east-1, iam.
  Options o;
  o.region = "us-east-1";
  o.service = "iam";
  auto key = sigv4::signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                parse_iso8601("2012-02-15T00:00:00Z"), o);
  CHECK(sigv4::hex(key.data(), key.size()) ==
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST_CASE("sigv4: uri_encode follows the S3 rules") {
  using sigv4::uri_encode;
  using sigv4::uri_encode_path;
  CHECK(uri_encode_path("my key") == "my%20key");
  CHECK(uri_encode_path("a+b") == "a%2Bb");
  CHECK(uri_encode_path("a=b") == "a%3Db");
  CHECK(uri_encode_path("~tilde-_.") == "~tilde-_.");
  CHECK(uri_encode_path("AZaz09") == "AZaz09");
  CHECK(uri_encode_path("*") == "%2A");
  CHECK(uri_encode_path("%") == "%25");
  CHECK(uri_encode_path("test$file.text") == "test%24file.text");
  // UTF-8 bytes, each percent-encoded with uppercase hex.
  CHECK(uri_encode_path("caf\xC3\xA9") == "caf%C3%A9");
  CHECK(uri_encode_path("\xE1\x88\xB4") == "%E1%88%B4");
  CHECK(uri_encode_path("\x7F\x80\xFF") == "%7F%80%FF");
  // '/' is kept in paths and encoded elsewhere (query names and values).
  CHECK(uri_encode_path("/bucket/dir/sub/file") == "/bucket/dir/sub/file");
  CHECK(uri_encode("a/b", true) == "a%2Fb");
  CHECK(uri_encode("a/b", false) == "a/b");
  CHECK(uri_encode("", true).empty());
}

TEST_CASE("sigv4: S3 paths are signed exactly as given") {
  Options o = s3_options();
  for (const char* path :
       {"/bucket/a/../b", "/bucket/./x", "//bucket//key//", "/bucket/my%20key", "/bucket/a%2Bb"}) {
    CAPTURE(path);
    CHECK(line_of(sigv4::canonical_request(s3_get(path), o), 1) == path);
  }
  // The generic rule encodes a second time; S3 must not.
  Options generic = o;
  generic.double_encode_path = true;
  CHECK(line_of(sigv4::canonical_request(s3_get("/bucket/my%20key"), generic), 1) ==
        "/bucket/my%2520key");
}

TEST_CASE("sigv4: path normalization when asked for") {
  Options o = s3_options();
  o.normalize_path = true;
  auto canon = [&](const char* path) {
    return line_of(sigv4::canonical_request(s3_get(path), o), 1);
  };
  CHECK(canon("/a/./b/../c//d/") == "/a/c/d/");
  CHECK(canon("/a/b/..") == "/a/");
  CHECK(canon("/..") == "/");
  CHECK(canon("/../../x") == "/x");
  CHECK(canon("//") == "/");
  CHECK(canon("/a/.") == "/a/");
  CHECK(canon("/a") == "/a");
  CHECK(canon("") == "/");
}

TEST_CASE("sigv4: canonical query encodes and sorts") {
  Request r = s3_get("/bucket");
  r.query = {{"prefix", "dir/sub dir"}, {"list-type", "2"}, {"acl", ""}, {"k", "a+b=c"}, {"k", "a"},
             {"\xC3\xA9", "x"}};
  std::string q = line_of(sigv4::canonical_request(r, s3_options()), 2);
  CHECK(q == "%C3%A9=x&acl=&k=a&k=a%2Bb%3Dc&list-type=2&prefix=dir%2Fsub%20dir");
}

TEST_CASE("sigv4: header values are trimmed, duplicates joined, names lowercased") {
  Request r = s3_get("/bucket/key");
  r.headers.emplace_back("X-Amz-Meta-A", "  one   two\t three  ");
  r.headers.emplace_back("x-amz-meta-b", "2");
  r.headers.emplace_back("X-AMZ-META-B", "1");
  r.headers.emplace_back("X-Amz-Meta-C", "folded\r\n   line");
  std::string canon = sigv4::canonical_request(r, s3_options());
  CHECK(canon.find("\nx-amz-meta-a:one two three\nx-amz-meta-b:2,1\nx-amz-meta-c:folded line\n") !=
        std::string::npos);
  CHECK(line_of(canon, 8) == "host;x-amz-meta-a;x-amz-meta-b;x-amz-meta-c");
}

TEST_CASE("sigv4: S3 signs x-amz-content-sha256 with UNSIGNED-PAYLOAD or the body hash") {
  std::time_t t = doc_time();
  SUBCASE("unsigned payload") {
    Request r = s3_get("/bucket/key");
    std::string canon = sigv4::sign_with_header(r, doc_credentials(), t, s3_options());
    const std::string* h = find_header(r, "x-amz-content-sha256");
    REQUIRE(h != nullptr);
    CHECK(*h == "UNSIGNED-PAYLOAD");
    CHECK(canon.find("\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n") != std::string::npos);
    CHECK(canon.ends_with("\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD"));
    CHECK(header_value(r, "Authorization")
              .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date,") != std::string::npos);
  }
  SUBCASE("body hash") {
    Request r = s3_get("/bucket/key");
    r.method = "PUT";
    std::string hash = sigv4::sha256_hex("hello");
    std::string canon = sigv4::sign_with_header(r, doc_credentials(), t, s3_options(hash));
    REQUIRE(find_header(r, "x-amz-content-sha256") != nullptr);
    CHECK(header_value(r, "x-amz-content-sha256") == hash);
    CHECK(canon.ends_with("\nhost;x-amz-content-sha256;x-amz-date\n" + hash));
  }
  SUBCASE("an empty payload_hash means an empty body") {
    Request r = s3_get("/bucket/key");
    sigv4::sign_with_header(r, doc_credentials(), t, s3_options(""));
    CHECK(header_value(r, "x-amz-content-sha256") == sigv4::kEmptyPayloadHash);
  }
}

TEST_CASE("sigv4: S3 documentation example, GET object with Range") {
  // "Signature Calculations for the Authorization Header: Transferring
  // Payload in a Single Chunk", example "GET Object".
  Request r = s3_get("/test.txt");
  r.headers.emplace_back("Range", "bytes=0-9");
  Options o = s3_options(std::string(sigv4::kEmptyPayloadHash));
  std::string canon = sigv4::sign_with_header(r, doc_credentials(), doc_time(), o);
  CHECK(canon ==
        "GET\n/test.txt\n\n"
        "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\n"
        "host;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sigv4::string_to_sign(canon, doc_time(), o) ==
        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  const std::string* auth = find_header(r, "Authorization");
  REQUIRE(auth != nullptr);
  CHECK(*auth ==
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  CHECK(header_value(r, "X-Amz-Date") == "20130524T000000Z");
}

TEST_CASE("sigv4: S3 documentation example, PUT object with a '$' in the key") {
  Request r;
  r.method = "PUT";
  r.path = "/" + sigv4::uri_encode_path("test$file.text");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  Options o = s3_options(sigv4::sha256_hex("Welcome to Amazon S3."));
  CHECK(o.payload_hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  sigv4::sign_with_header(r, doc_credentials(), doc_time(), o);
  CHECK(
      header_value(r, "Authorization")
          .ends_with("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                     "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST_CASE("sigv4: S3 documentation examples, GET bucket with a query") {
  Options o = s3_options(std::string(sigv4::kEmptyPayloadHash));
  SUBCASE("?lifecycle (empty value keeps '=')") {
    Request r = s3_get("/");
    r.query = {{"lifecycle", ""}};
    std::string canon = sigv4::sign_with_header(r, doc_credentials(), doc_time(), o);
    CHECK(line_of(canon, 2) == "lifecycle=");
    CHECK(header_value(r, "Authorization")
              .ends_with(
                  "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
  }
  SUBCASE("?max-keys=2&prefix=J") {
    Request r = s3_get("/");
    r.query = {{"max-keys", "2"}, {"prefix", "J"}};
    sigv4::sign_with_header(r, doc_credentials(), doc_time(), o);
    CHECK(header_value(r, "Authorization")
              .ends_with(
                  "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
  }
}

TEST_CASE("sigv4: S3 documentation example, presigned GET") {
  // "Authenticating Requests: Using Query Parameters": expires in 86400 s.
  Request r = s3_get("/test.txt");
  sigv4::sign_with_query(r, doc_credentials(), doc_time(), 86400, s3_options());
  CHECK(r.headers.size() == 1);  // a presigned URL adds no headers
  REQUIRE(find_query_param(r, "X-Amz-Signature") != nullptr);
  CHECK(query_value(r, "X-Amz-Signature") ==
        "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  CHECK(query_value(r, "X-Amz-Credential") ==
        "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request");
  CHECK(query_value(r, "X-Amz-Expires") == "86400");
  CHECK(query_value(r, "X-Amz-SignedHeaders") == "host");
  CHECK(query_value(r, "X-Amz-Algorithm") == "AWS4-HMAC-SHA256");
  CHECK(query_value(r, "X-Amz-Date") == "20130524T000000Z");
}

TEST_CASE("sigv4: session token is sent and signed") {
  const std::string token = "FQoG/session+token==";
  SUBCASE("header signing") {
    Request r = s3_get("/bucket/key");
    std::string canon =
        sigv4::sign_with_header(r, doc_credentials(token), doc_time(), s3_options());
    REQUIRE(find_header(r, "X-Amz-Security-Token") != nullptr);
    CHECK(header_value(r, "X-Amz-Security-Token") == token);
    CHECK(canon.find("\nx-amz-security-token:" + token + "\n") != std::string::npos);
    CHECK(header_value(r, "Authorization")
              .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") !=
          std::string::npos);
  }
  SUBCASE("header signing, token left unsigned") {
    Request r = s3_get("/bucket/key");
    Options o = s3_options();
    o.sign_session_token = false;
    std::string canon = sigv4::sign_with_header(r, doc_credentials(token), doc_time(), o);
    CHECK(find_header(r, "X-Amz-Security-Token") != nullptr);
    CHECK(canon.find("x-amz-security-token") == std::string::npos);
  }
  SUBCASE("query signing") {
    Request r = s3_get("/bucket/key");
    sigv4::sign_with_query(r, doc_credentials(token), doc_time(), 60, s3_options());
    REQUIRE(find_query_param(r, "X-Amz-Security-Token") != nullptr);
    CHECK(query_value(r, "X-Amz-Security-Token") == token);
    Request without_sig = r;
    std::erase_if(without_sig.query, [](const auto& p) { return p.first == "X-Amz-Signature"; });
    std::string canon = sigv4::canonical_request(without_sig, s3_options());
    CHECK(line_of(canon, 2).find("&X-Amz-Security-Token=FQoG%2Fsession%2Btoken%3D%3D&") !=
          std::string::npos);
  }
  SUBCASE("no token, no header") {
    Request r = s3_get("/bucket/key");
    sigv4::sign_with_header(r, doc_credentials(), doc_time(), s3_options());
    CHECK(find_header(r, "X-Amz-Security-Token") == nullptr);
  }
}

TEST_CASE("sigv4: signing again replaces the previous signature") {
  // A retry re-signs the same Request later; nothing may be duplicated.
  Credentials creds = doc_credentials("tok");
  std::time_t later = doc_time() + 3600;
  Request once = s3_get("/bucket/key");
  sigv4::sign_with_header(once, creds, doc_time(), s3_options());
  sigv4::sign_with_header(once, creds, later, s3_options());
  Request fresh = s3_get("/bucket/key");
  sigv4::sign_with_header(fresh, creds, later, s3_options());
  CHECK(once.headers == fresh.headers);
  for (const char* name :
       {"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "x-amz-content-sha256"})
    CHECK(count_header(once, name) == 1);

  Request q = s3_get("/bucket/key");
  sigv4::sign_with_query(q, creds, doc_time(), 60, s3_options());
  sigv4::sign_with_query(q, creds, later, 60, s3_options());
  Request qfresh = s3_get("/bucket/key");
  sigv4::sign_with_query(qfresh, creds, later, 60, s3_options());
  CHECK(q.query == qfresh.query);
}
