// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4 as a pipeline of small pure steps: canonical
// request, string to sign, signing key, signature. Time is an input, so
// every step is deterministic. The only file that includes OpenSSL is
// sigv4.cpp; other parts get hashing through the helpers below.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace objcache::store::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" when none
};

// One HTTP request to sign. Header names keep the caller's case; the signer
// lowercases them. The path is the raw request path as it goes on the wire
// (already URI-encoded by the caller, e.g. with uri_encode_path). The query
// holds (name, value) pairs *decoded*; the signer encodes them canonically.
struct Request {
  std::string method;  // "GET"
  std::string path;    // "/bucket/my%20key"
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // must include Host
};

struct Options {
  std::string region;   // "us-east-1"
  std::string service;  // "s3"
  // Generic AWS services normalize the path (remove "." / ".." / "//") and
  // encode it a second time; S3 does neither. The AWS test suite uses the
  // generic rules; S3 requests set both to false.
  bool normalize_path = false;
  bool double_encode_path = false;
  // Hex SHA-256 of the body or "UNSIGNED-PAYLOAD". For S3 it is also sent and
  // signed as x-amz-content-sha256. Empty means the empty body's hash.
  std::string payload_hash;
  bool add_content_sha256_header = true;  // S3: true; the generic suite: false
  // When false, X-Amz-Security-Token is added after signing (unsigned), the
  // behaviour the suite's "omit_session_token" cases expect.
  bool sign_session_token = true;
};

// "20150830T123600Z" and "20150830" for t (UTC).
std::string amz_date(std::time_t t);
std::string amz_day(std::time_t t);

// RFC 3986 encoding as AWS defines it: unreserved A-Z a-z 0-9 - _ . ~ kept,
// everything else %XX (uppercase hex); '/' kept when encode_slash is false.
std::string uri_encode(std::string_view s, bool encode_slash);
// Encodes each segment of an object key path, keeping '/' (S3 keys).
inline std::string uri_encode_path(std::string_view s) { return uri_encode(s, false); }

// The steps. Each is pure and testable on its own.
std::string canonical_request(const Request& req, const Options& opts);
std::string string_to_sign(std::string_view canonical_request, std::time_t t,
                           const Options& opts);
std::array<std::uint8_t, 32> signing_key(std::string_view secret, std::time_t t,
                                         const Options& opts);
std::string signature(const std::array<std::uint8_t, 32>& key,
                      std::string_view string_to_sign);

// Signs req in place with an Authorization header: adds X-Amz-Date,
// X-Amz-Security-Token (if any) and, when opts say so, x-amz-content-sha256,
// then Authorization. Returns the canonical request that was signed (for
// debugging; contains no secret). Headers from an earlier signing are
// replaced, so a retry can re-sign the same Request.
std::string sign_with_header(Request& req, const Credentials& creds, std::time_t t,
                             const Options& opts);

// Presigned (query-string) signing: adds X-Amz-Algorithm, X-Amz-Credential,
// X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Security-Token (if
// any) and X-Amz-Signature to req.query, replacing earlier ones. Adds no
// header (no x-amz-content-sha256); opts.payload_hash is still what is
// signed (S3 presigned URLs: UNSIGNED-PAYLOAD).
void sign_with_query(Request& req, const Credentials& creds, std::time_t t,
                     std::int64_t expires_seconds, const Options& opts);

// Hash helpers for the rest of the store (so only sigv4.cpp includes OpenSSL).
std::string sha256_hex(std::string_view data);
std::string hex(const std::uint8_t* data, std::size_t n);
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace objcache::store::sigv4
