// SPDX-License-Identifier: Apache-2.0
// The checks behind the config loader that need no TOML: cache names, local
// paths, endpoints, regions, credential specs, sources, the directories no
// mount may hide, and where the configuration file is. Pure string work
// (plus stat for find_config_path).
#include "config/checks.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

#include "objcache/config.h"

namespace objcache {
namespace config {
namespace {

constexpr std::string_view kSourceExpected = R"(expected a source like "s3://bucket/prefix/")";
// S3 refuses longer keys, so a longer prefix can name nothing.
constexpr std::size_t kMaxPrefix = 1024;
// The shm file is "objcache-<uid>-<name>" and NAME_MAX is 255.
constexpr std::size_t kMaxCacheName = 200;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Error invalid(std::string_view expected, std::string_view why, std::string_view got) {
  std::string msg(expected);
  msg += why;
  msg += ", got ";
  msg += quote(got);
  return make_error(Status::InvalidArgument, std::move(msg));
}

std::optional<std::string> home_dir() {
  // secure_getenv: in a set-id program the environment is not the user's
  // to trust, and the shim may run inside one.
  const char* home = secure_getenv("HOME");
  if (home == nullptr || home[0] != '/') return std::nullopt;
  std::string h(home);
  while (!h.empty() && h.back() == '/') h.pop_back();  // "/" becomes "": "~/x" is "/x"
  return h;
}

std::string quote(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  bool cut = text.size() > kMaxShown;
  if (cut) {
    std::size_t n = kMaxShown;
    // Do not end in the middle of a UTF-8 sequence.
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    text = text.substr(0, n);
  }
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += cut ? "...\"" : "\"";
  return out;
}

Result<std::string> check_cache_name(const std::string& text) {
  constexpr std::string_view kExpected = "expected a name of letters, digits, '.', '_' and '-'";
  if (text.empty()) return invalid(kExpected, " (it names a /dev/shm file)", text);
  if (text.size() > kMaxCacheName) return invalid(kExpected, " of at most 200 characters", text);
  for (char c : text) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') {
      return invalid(kExpected, " (it names a /dev/shm file)", text);
    }
  }
  return text;
}

Result<std::string> normalize_mount_path(const std::string& text) {
  constexpr std::string_view kExpected = R"(expected an absolute path like "/mnt/data")";
  if (text.empty() || text.front() != '/') return invalid(kExpected, "", text);
  if (text.find('\0') != std::string::npos) return invalid(kExpected, " (no NUL bytes)", text);
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('/', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view seg(text.data() + pos, end - pos);
    if (seg == "." || seg == "..") {
      return invalid(kExpected, R"( (no "." or ".." segments))", text);
    }
    if (!seg.empty()) {
      out += '/';
      out += seg;
    }
    pos = end + 1;
  }
  // A mount of "/" would take every path on the machine away from libc.
  if (out.empty()) return invalid(kExpected, R"( (not "/" itself))", text);
  return out;
}

Result<std::string> check_local_path(const std::string& text, Tilde tilde) {
  std::string_view expected = tilde == Tilde::Expand
                                  ? R"(expected "" or an absolute path (or one starting with "~/"))"
                                  : R"(expected "" or an absolute path)";
  if (text.find('\0') != std::string::npos) return invalid(expected, " without NUL bytes", text);
  if (text.empty() || text.front() == '/') return text;
  if (tilde == Tilde::Expand && text.rfind("~/", 0) == 0) {
    auto home = home_dir();
    if (!home) return invalid(expected, " (cannot expand \"~\": HOME is not an absolute path)", text);
    return *home + text.substr(1);
  }
  return invalid(expected, "", text);
}

Result<std::string> check_endpoint(const std::string& text) {
  constexpr std::string_view kExpected =
      R"(expected "" or a URL like "http://127.0.0.1:9000" (http(s)://host[:port], no path))";
  if (text.empty()) return text;
  std::string scheme;
  if (starts_with_ci(text, "http://")) {
    scheme = "http";
  } else if (starts_with_ci(text, "https://")) {
    scheme = "https";
  } else {
    return invalid(kExpected, "", text);
  }
  std::string_view rest(text);
  rest.remove_prefix(scheme.size() + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {  // an IPv6 literal
    std::size_t close = host.find(']');
    if (close == std::string_view::npos || close == 1) return invalid(kExpected, "", text);
    for (char c : host.substr(1, close - 1)) {
      if (!is_alnum(c) && c != ':' && c != '.' && c != '%') return invalid(kExpected, "", text);
    }
    std::string_view after = host.substr(close + 1);
    if (!after.empty() && after.front() != ':') return invalid(kExpected, "", text);
    if (!after.empty()) port = after.substr(1);
    if (!after.empty() && port.empty()) return invalid(kExpected, "", text);
  } else {
    std::size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return invalid(kExpected, "", text);
    }
    if (host.empty()) return invalid(kExpected, "", text);
    for (char c : host) {
      if (!is_alnum(c) && c != '.' && c != '-' && c != '_') return invalid(kExpected, "", text);
    }
  }
  if (!port.empty()) {
    unsigned long value = 0;
    for (char c : port) {
      if (!is_digit(c) || port.size() > 5) return invalid(kExpected, "", text);
      value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (value == 0 || value > 65535) return invalid(kExpected, " (port 1 to 65535)", text);
  }
  return scheme + "://" + std::string(rest);
}

Result<std::string> check_region(const std::string& text) {
  constexpr std::string_view kExpected =
      R"(expected "" or a region like "us-east-1" (letters, digits, '.', '_' and '-'))";
  if (text.size() > 64) return invalid(kExpected, "", text);
  for (char c : text) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') return invalid(kExpected, "", text);
  }
  return text;
}

Result<std::string> check_credentials(const std::string& text) {
  constexpr std::string_view kExpected = R"(expected "env", "anonymous", "profile:NAME" or "file:PATH")";
  if (text == "env" || text == "anonymous") return text;
  if (text.rfind("profile:", 0) == 0) {
    std::string_view name(text);
    name.remove_prefix(8);
    if (name.empty()) return invalid(kExpected, " (NAME is empty)", text);
    for (char c : name) {
      auto u = static_cast<unsigned char>(c);
      // The name becomes an INI section header: "[profile NAME]".
      if (u <= 0x20 || u == 0x7f || c == '[' || c == ']') {
        return invalid(kExpected, " (NAME has a space, control character or bracket)", text);
      }
    }
    return text;
  }
  if (text.rfind("file:", 0) == 0) {
    std::string path = text.substr(5);
    if (path.empty()) return invalid(kExpected, " (PATH is empty)", text);
    auto checked = check_local_path(path, Tilde::Expand);
    if (!checked) {
      return invalid(kExpected, R"( (PATH absolute or starting with "~/"; HOME must be set for "~"))", text);
    }
    return "file:" + *checked;
  }
  return invalid(kExpected, "", text);
}


bool PathLess::operator()(std::string_view a, std::string_view b) const noexcept {
  auto rank = [](char c) { return c == '/' ? 0 : static_cast<unsigned char>(c) + 1; };
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return rank(a[i]) < rank(b[i]);
  }
  return a.size() < b.size();
}

namespace {

// path with "//", "." and ".." resolved as the shim resolves them (no
// symlinks: mounts are matched by name); "/" for the root.
std::string lexical(std::string_view path) {
  std::string out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    if (seg == "..") {
      out.resize(out.empty() ? 0 : out.rfind('/'));
    } else if (!seg.empty() && seg != ".") {
      out += '/';
      out += seg;
    }
    pos = end + 1;
  }
  return out.empty() ? "/" : out;
}

std::string parent_of(std::string_view file) {
  std::string p = lexical(file);
  std::size_t slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

}  // namespace

std::vector<NeededDir> needed_dirs(const Config& cfg) {
  std::vector<NeededDir> out;
  for (const char* d : {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sys",
                        "/dev", "/dev/shm", "/run", "/tmp", "/var/tmp"}) {
    out.push_back({d, std::string("the system directory ") + d});
  }
  auto add = [&out](std::string path, std::string what) {
    if (path.size() > 1) out.push_back({std::move(path), std::move(what)});
  };
  const CacheConfig& c = cfg.cache;
  if (!c.spill_dir.empty()) add(lexical(c.spill_dir), "cache.spill_dir " + quote(c.spill_dir));
  // Where written files wait (upload/staging_dir.cpp's default_staging_dir;
  // <spill_dir>/staging is inside spill_dir, checked above).
  if (!c.staging_dir.empty()) {
    add(lexical(c.staging_dir), "the staging directory " + quote(c.staging_dir));
  } else if (c.spill_dir.empty()) {
    add("/var/tmp/objcache/staging", "the staging directory \"/var/tmp/objcache/staging\"");
  }
  if (!cfg.path.empty() && cfg.path.front() == '/') {
    add(parent_of(cfg.path), "the configuration file " + quote(cfg.path));
  }
  if (!cfg.log.file.empty()) add(parent_of(cfg.log.file), "log.file " + quote(cfg.log.file));
  std::set<std::string> seen;  // credentials files, each once (10,000 mounts often share one)
  auto add_credentials = [&](const std::string& spec) {
    if (spec.rfind("file:", 0) != 0) return;
    std::string file = spec.substr(5);
    if (!seen.insert(file).second) return;
    add(parent_of(file), "the credentials file " + quote(file));
  };
  add_credentials(cfg.store.credentials);
  for (const MountConfig& m : cfg.mounts) add_credentials(m.store.credentials);
  return out;
}

}  // namespace config

// The public checks of objcache/config.h, with the helpers above.
using namespace config;

Result<SourceUri> parse_source(const std::string& text) {
  std::size_t sep = text.find("://");
  if (sep == std::string::npos) return invalid(kSourceExpected, " (or oss://...)", text);
  SourceUri uri;
  uri.scheme = lower(std::string_view(text).substr(0, sep));
  if (uri.scheme != "s3" && uri.scheme != "oss") {
    return invalid(kSourceExpected, " (the scheme is s3:// or its synonym oss://)", text);
  }
  std::string rest = text.substr(sep + 3);
  std::size_t slash = rest.find('/');
  uri.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) uri.prefix = rest.substr(slash + 1);

  const std::string& b = uri.bucket;
  bool bucket_ok = b.size() >= 3 && b.size() <= 63 && is_lower_alnum(b.front()) && is_lower_alnum(b.back()) &&
                   b.find("..") == std::string::npos;
  for (char c : b) bucket_ok = bucket_ok && (is_lower_alnum(c) || c == '.' || c == '-');
  if (!bucket_ok) {
    return invalid(kSourceExpected,
                   " (a bucket name is 3 to 63 characters of a-z, 0-9, '.' and '-', "
                   "starting and ending with a letter or digit)",
                   text);
  }

  std::string& p = uri.prefix;
  if (p.find('\0') != std::string::npos) return invalid(kSourceExpected, " (no NUL bytes)", text);
  if (!p.empty() && p.back() != '/') p += '/';
  if (p.size() > kMaxPrefix) return invalid(kSourceExpected, " (a prefix of at most 1024 bytes)", text);
  // Keys map to local paths one to one, so the prefix must be a path too.
  for (std::size_t pos = 0; pos < p.size();) {
    std::size_t end = p.find('/', pos);
    std::string_view seg(p.data() + pos, end - pos);
    if (seg.empty()) return invalid(kSourceExpected, R"( (no "//" in the prefix))", text);
    if (seg == "." || seg == "..") {
      return invalid(kSourceExpected, R"( (no "." or ".." segments in the prefix))", text);
    }
    pos = end + 1;
  }
  return uri;
}

std::optional<std::string> find_config_path() {
  // secure_getenv: see home_dir(). An empty OBJCACHE_CONFIG counts as unset.
  const char* env = secure_getenv("OBJCACHE_CONFIG");
  if (env != nullptr && env[0] != '\0') return std::string(env);  // even if missing: the caller says so
  if (auto home = home_dir()) {
    std::string p = *home + "/.config/objcache/config.toml";
    if (exists(p)) return p;
  }
  std::string system = "/etc/objcache/config.toml";
  if (exists(system)) return system;
  return std::nullopt;
}

}  // namespace objcache
