// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4. The only file in objcache that includes OpenSSL:
// everything else hashes through sha256_hex() and hex().
//
// Nothing here throws on its own. OpenSSL's one-shot digest/HMAC calls can
// only fail on allocation; if they do, the hash or signature comes back
// empty, the request carries a signature the server rejects (403), and no
// wrong data is ever accepted. std::bad_alloc from std::string is left to
// the caller's boundary, like everywhere else in libcache.
#include "store/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <ctime>

namespace objcache::store::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kScopeTerminator = "aws4_request";

// Header and query names the signer owns. Removing stale copies before
// adding fresh ones lets a caller re-sign the same Request on retry.
constexpr std::string_view kDateHeader = "X-Amz-Date";
constexpr std::string_view kTokenHeader = "X-Amz-Security-Token";
// Lowercase on purpose: it is how aws-c-auth spells it on the wire, so the
// suite's expected signed requests compare byte for byte.
constexpr std::string_view kContentSha256Header = "x-amz-content-sha256";
constexpr std::string_view kAuthorizationHeader = "Authorization";

constexpr std::string_view kAlgorithmParam = "X-Amz-Algorithm";
constexpr std::string_view kCredentialParam = "X-Amz-Credential";
constexpr std::string_view kDateParam = "X-Amz-Date";
constexpr std::string_view kExpiresParam = "X-Amz-Expires";
constexpr std::string_view kSignedHeadersParam = "X-Amz-SignedHeaders";
constexpr std::string_view kTokenParam = "X-Amz-Security-Token";
constexpr std::string_view kSignatureParam = "X-Amz-Signature";

constexpr std::size_t kSha256Size = 32;
using Digest = std::array<std::uint8_t, kSha256Size>;

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

// CR and LF count as whitespace so that a folded (obs-fold) header value
// such as "value1\n  value2" canonicalizes to "value1 value2".
bool is_header_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// Strips leading/trailing whitespace and collapses inner runs to one space
// (SigV4 "Trimall"); quotes get no special treatment, as AWS specifies.
std::string trim_all(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool pending_space = false;
  for (char c : v) {
    if (is_header_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

// RFC 3986 remove_dot_segments plus collapsing of empty segments ("//"),
// as the generic services expect. A trailing slash survives, and a path
// ending in "." or ".." ends in a slash (it names a directory).
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    bool last = end == path.size();
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = last;
    } else if (seg == "." || seg.empty()) {
      trailing_slash = last;
    } else {
      segments.push_back(seg);
      trailing_slash = false;
    }
    pos = end + 1;
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (trailing_slash && !segments.empty()) out.push_back('/');
  return out;
}

std::string canonical_uri(std::string_view path, const Options& opts) {
  std::string uri = opts.normalize_path ? normalize_path(path) : std::string(path);
  if (opts.double_encode_path) uri = uri_encode(uri, /*encode_slash=*/false);
  // An empty request target is not valid HTTP; "/" is what goes on the wire.
  if (uri.empty()) uri = "/";
  return uri;
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query,
                            std::string_view skip_name) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    if (!skip_name.empty() && name == skip_name) continue;
    encoded.emplace_back(uri_encode(name, true), uri_encode(value, true));
  }
  // By encoded name, then encoded value; std::string compares bytes as
  // unsigned, which is the code-point order AWS asks for.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

struct CanonicalHeaders {
  std::string block;           // "name:value\n" per distinct name, sorted
  std::string signed_headers;  // "host;x-amz-date"
};

CanonicalHeaders canonical_headers(const std::vector<std::pair<std::string, std::string>>& headers,
                                   std::string_view skip_name) {
  std::vector<std::pair<std::string, std::string>> lowered;
  lowered.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    // Authorization can never sign itself; skip_name is an unsigned token.
    if (iequals(name, kAuthorizationHeader)) continue;
    if (!skip_name.empty() && iequals(name, skip_name)) continue;
    lowered.emplace_back(lowercase(name), trim_all(value));
  }
  // Stable: repeated names keep the caller's value order ("value2,value1").
  std::stable_sort(lowered.begin(), lowered.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (std::size_t i = 0; i < lowered.size();) {
    const std::string& name = lowered[i].first;
    out.block.append(name).push_back(':');
    for (bool first = true; i < lowered.size() && lowered[i].first == name; ++i, first = false) {
      if (!first) out.block.push_back(',');
      out.block.append(lowered[i].second);
    }
    out.block.push_back('\n');
    if (!out.signed_headers.empty()) out.signed_headers.push_back(';');
    out.signed_headers.append(name);
  }
  return out;
}

struct Canonical {
  std::string request;
  std::string signed_headers;
};

// skip_header / skip_query leave out one header or query parameter: the
// session token when the caller asked for it to travel unsigned.
Canonical build_canonical(const Request& req, const Options& opts, std::string_view skip_header,
                          std::string_view skip_query) {
  CanonicalHeaders headers = canonical_headers(req.headers, skip_header);
  std::string_view payload = opts.payload_hash.empty() ? kEmptyPayloadHash : opts.payload_hash;
  Canonical out;
  out.request.append(req.method).push_back('\n');
  out.request.append(canonical_uri(req.path, opts)).push_back('\n');
  out.request.append(canonical_query(req.query, skip_query)).push_back('\n');
  out.request.append(headers.block).push_back('\n');
  out.request.append(headers.signed_headers).push_back('\n');
  out.request.append(payload);
  out.signed_headers = std::move(headers.signed_headers);
  return out;
}

std::string credential_scope(std::time_t t, const Options& opts) {
  std::string scope = amz_day(t);
  scope.append("/").append(opts.region).append("/").append(opts.service).append("/");
  scope.append(kScopeTerminator);
  return scope;
}

// OpenSSL wants a non-null pointer even for zero-length input.
const unsigned char* bytes(std::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// Returns false (out zeroed) only if OpenSSL could not allocate.
bool hmac_sha256(const void* key, std::size_t key_len, std::string_view data, Digest& out) {
  unsigned int len = 0;
  if (key_len > static_cast<std::size_t>(INT_MAX) ||
      HMAC(EVP_sha256(), key, static_cast<int>(key_len), bytes(data), data.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    out.fill(0);
    return false;
  }
  return true;
}

bool sha256(std::string_view data, Digest& out) {
  unsigned int len = 0;
  if (EVP_Digest(bytes(data), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    out.fill(0);
    return false;
  }
  return true;
}

void erase_headers(std::vector<std::pair<std::string, std::string>>& headers,
                   std::string_view name) {
  std::erase_if(headers, [&](const auto& h) { return iequals(h.first, name); });
}

void erase_params(std::vector<std::pair<std::string, std::string>>& query, std::string_view name) {
  std::erase_if(query, [&](const auto& p) { return p.first == name; });
}

// Steps 2 to 4 of the pipeline, shared by both ways of signing.
std::string sign_canonical(std::string_view canonical, std::string_view secret, std::time_t t,
                           const Options& opts) {
  std::array<std::uint8_t, 32> key = signing_key(secret, t, opts);
  std::string sig = signature(key, string_to_sign(canonical, t, opts));
  OPENSSL_cleanse(key.data(), key.size());
  return sig;
}

bool format_utc(std::time_t t, const char* format, std::string& out) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return false;
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof(buf), format, &tm);
  if (n == 0) return false;
  out.assign(buf, n);
  return true;
}

}  // namespace

std::string amz_date(std::time_t t) {
  std::string out;
  format_utc(t, "%Y%m%dT%H%M%SZ", out);
  return out;
}

std::string amz_day(std::time_t t) {
  std::string out;
  format_utc(t, "%Y%m%d", out);
  return out;
}

std::string uri_encode(std::string_view s, bool encode_slash) {
  static constexpr char kHexUpper[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHexUpper[c >> 4]);
      out.push_back(kHexUpper[c & 0x0f]);
    }
  }
  return out;
}

std::string canonical_request(const Request& req, const Options& opts) {
  return build_canonical(req, opts, {}, {}).request;
}

std::string string_to_sign(std::string_view canonical_request, std::time_t t, const Options& opts) {
  std::string out(kAlgorithm);
  out.append("\n").append(amz_date(t));
  out.append("\n").append(credential_scope(t, opts));
  out.append("\n").append(sha256_hex(canonical_request));
  return out;
}

std::array<std::uint8_t, 32> signing_key(std::string_view secret, std::time_t t,
                                         const Options& opts) {
  std::string k_secret = "AWS4";
  k_secret.append(secret);
  Digest k_date{}, k_region{}, k_service{}, k_signing{};
  bool ok = hmac_sha256(k_secret.data(), k_secret.size(), amz_day(t), k_date) &&
            hmac_sha256(k_date.data(), k_date.size(), opts.region, k_region) &&
            hmac_sha256(k_region.data(), k_region.size(), opts.service, k_service) &&
            hmac_sha256(k_service.data(), k_service.size(), kScopeTerminator, k_signing);
  if (!ok) k_signing.fill(0);
  // The intermediates are as good as the secret for one day; wipe them.
  OPENSSL_cleanse(k_secret.data(), k_secret.size());
  OPENSSL_cleanse(k_date.data(), k_date.size());
  OPENSSL_cleanse(k_region.data(), k_region.size());
  OPENSSL_cleanse(k_service.data(), k_service.size());
  return k_signing;
}

std::string signature(const std::array<std::uint8_t, 32>& key, std::string_view string_to_sign) {
  Digest mac{};
  if (!hmac_sha256(key.data(), key.size(), string_to_sign, mac)) return {};
  return hex(mac.data(), mac.size());
}

std::string sign_with_header(Request& req, const Credentials& creds, std::time_t t,
                             const Options& opts) {
  erase_headers(req.headers, kAuthorizationHeader);
  erase_headers(req.headers, kDateHeader);
  erase_headers(req.headers, kTokenHeader);
  if (opts.add_content_sha256_header) erase_headers(req.headers, kContentSha256Header);

  // Same order as aws-c-auth, so the suite's signed requests match exactly.
  bool has_token = !creds.session_token.empty();
  if (has_token) req.headers.emplace_back(kTokenHeader, creds.session_token);
  req.headers.emplace_back(kDateHeader, amz_date(t));
  if (opts.add_content_sha256_header) {
    std::string_view payload = opts.payload_hash.empty() ? kEmptyPayloadHash : opts.payload_hash;
    req.headers.emplace_back(kContentSha256Header, payload);
  }

  std::string_view skip = (has_token && !opts.sign_session_token) ? kTokenHeader : "";
  Canonical canonical = build_canonical(req, opts, skip, {});
  std::string sig = sign_canonical(canonical.request, creds.secret_access_key, t, opts);

  std::string auth(kAlgorithm);
  auth.append(" Credential=").append(creds.access_key_id).append("/");
  auth.append(credential_scope(t, opts));
  auth.append(", SignedHeaders=").append(canonical.signed_headers);
  auth.append(", Signature=").append(sig);
  req.headers.emplace_back(kAuthorizationHeader, std::move(auth));
  return std::move(canonical.request);
}

void sign_with_query(Request& req, const Credentials& creds, std::time_t t,
                     std::int64_t expires_seconds, const Options& opts) {
  for (std::string_view name : {kAlgorithmParam, kCredentialParam, kDateParam, kExpiresParam,
                                kSignedHeadersParam, kTokenParam, kSignatureParam})
    erase_params(req.query, name);

  // A presigned URL carries no headers of ours, so x-amz-content-sha256 is
  // never added here; opts.payload_hash (S3: UNSIGNED-PAYLOAD) still goes
  // into the canonical request.
  std::string signed_headers = canonical_headers(req.headers, {}).signed_headers;
  req.query.emplace_back(kAlgorithmParam, kAlgorithm);
  req.query.emplace_back(kCredentialParam, creds.access_key_id + "/" + credential_scope(t, opts));
  req.query.emplace_back(kDateParam, amz_date(t));
  req.query.emplace_back(kSignedHeadersParam, std::move(signed_headers));
  req.query.emplace_back(kExpiresParam, std::to_string(expires_seconds));
  bool has_token = !creds.session_token.empty();
  if (has_token) req.query.emplace_back(kTokenParam, creds.session_token);

  std::string_view skip = (has_token && !opts.sign_session_token) ? kTokenParam : "";
  Canonical canonical = build_canonical(req, opts, {}, skip);
  req.query.emplace_back(kSignatureParam,
                         sign_canonical(canonical.request, creds.secret_access_key, t, opts));
}

std::string sha256_hex(std::string_view data) {
  Digest d{};
  if (!sha256(data, d)) return {};
  return hex(d.data(), d.size());
}

std::string hex(const std::uint8_t* data, std::size_t n) {
  static constexpr char kHexLower[] = "0123456789abcdef";
  std::string out;
  out.resize(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexLower[data[i] >> 4];
    out[2 * i + 1] = kHexLower[data[i] & 0x0f];
  }
  return out;
}

}  // namespace objcache::store::sigv4
