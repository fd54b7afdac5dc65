// SPDX-License-Identifier: Apache-2.0
#include "meta/manifest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "meta/meta_codec.h"

namespace objcache::meta {

namespace {

std::string at(const std::string& file, std::size_t line) { return file + ":" + std::to_string(line) + ": "; }

Result<std::uint64_t> parse_uint(std::string_view s) {
  if (s.empty() || s.size() > 20) return make_error(Status::ConfigError, "");
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return make_error(Status::ConfigError, "");
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return make_error(Status::ConfigError, "");
    v = v * 10 + d;
  }
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// One row from a JSON line; an error message (without the place) if bad.
std::string from_json(std::string_view line, ObjectInfo* o) {
  nlohmann::json j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "not a JSON object";
  for (const auto& [k, v] : j.items()) {
    if (k != "key" && k != "size" && k != "etag" && k != "mtime") return "unknown field \"" + k + "\"";
    (void)v;
  }
  auto key = j.find("key");
  if (key == j.end() || !key->is_string()) return "\"key\" must be a string";
  o->key = key->get<std::string>();
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) return "\"size\" must be a whole number of bytes";
  o->size = size->get<std::uint64_t>();
  auto etag = j.find("etag");
  if (etag == j.end() || !etag->is_string()) return "\"etag\" must be a string";
  o->etag = etag->get<std::string>();
  if (auto mt = j.find("mtime"); mt != j.end()) {
    if (!mt->is_number_integer()) return "\"mtime\" must be whole seconds since the epoch";
    o->mtime = mt->get<std::int64_t>();
  }
  return {};
}

std::string from_csv(std::string_view line, ObjectInfo* o) {
  std::vector<std::string_view> f;
  for (std::size_t start = 0;;) {
    auto comma = line.find(',', start);
    f.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (f.size() < 3 || f.size() > 4) return "expected key,size,etag[,mtime] (a key with a comma needs a JSON line)";
  o->key = std::string(f[0]);
  auto size = parse_uint(f[1]);
  if (!size) return "size \"" + std::string(f[1]) + "\" is not a whole number of bytes";
  o->size = *size;
  o->etag = std::string(f[2]);
  if (f.size() == 4) {
    auto mt = parse_uint(f[3]);
    if (!mt || *mt > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return "mtime \"" + std::string(f[3]) + "\" is not whole seconds since the epoch";
    }
    o->mtime = static_cast<std::int64_t>(*mt);
  }
  return {};
}

}  // namespace

Result<Manifest> Manifest::parse(std::string_view text, const std::string& display_path, const std::string& prefix,
                                 std::int64_t default_mtime) {
  Manifest out;
  out.prefix_ = prefix;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line_no == 1 && line.starts_with("key,")) continue;  // a CSV header
    ObjectInfo o;
    o.mtime = default_mtime;
    std::string bad = line.front() == '{' ? from_json(line, &o) : from_csv(line, &o);
    if (!bad.empty()) return make_error(Status::ConfigError, at(display_path, line_no) + bad);
    if (!o.key.starts_with(prefix) || o.key.size() == prefix.size()) {
      return make_error(Status::ConfigError, at(display_path, line_no) + "key \"" + o.key +
                                                 "\" is not under the mount's prefix \"" + prefix + "\"");
    }
    if (o.key.ends_with('/') || o.key.find("//", prefix.size()) != std::string::npos) {
      return make_error(Status::ConfigError,
                        at(display_path, line_no) + "key \"" + o.key + "\" names no file (an empty path part)");
    }
    if (o.etag.empty() || o.etag.size() > kMaxEtag) {
      return make_error(Status::ConfigError, at(display_path, line_no) + "etag of \"" + o.key +
                                                 "\" must be 1 to " + std::to_string(kMaxEtag) + " characters");
    }
    if (o.etag.size() >= 2 && o.etag.front() == '"' && o.etag.back() == '"') o.etag = o.etag.substr(1, o.etag.size() - 2);
    out.rows_.push_back(Row{o.key.substr(prefix.size()), o.size, o.mtime, std::move(o.etag)});
  }
  std::sort(out.rows_.begin(), out.rows_.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < out.rows_.size(); ++i) {
    if (out.rows_[i].name == out.rows_[i - 1].name) {
      return make_error(Status::ConfigError, display_path + ": key \"" + prefix + out.rows_[i].name + "\" is given twice");
    }
  }
  return out;
}

Result<Manifest> Manifest::load(const std::string& path, const std::string& prefix) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return make_error(e == ENOENT ? Status::NotFound : Status::IoError,
                      "manifest " + path + ": cannot read: " + std::strerror(e));
  }
  struct stat st {};
  ::fstat(fd, &st);
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return make_error(Status::IoError, "manifest " + path + ": cannot read: " + std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse(text, path, prefix, static_cast<std::int64_t>(st.st_mtime));
}

void Manifest::list(std::string_view dir, std::vector<ObjectInfo>* objects, std::vector<std::string>* prefixes) const {
  auto it = std::lower_bound(rows_.begin(), rows_.end(), dir, [](const Row& r, std::string_view d) { return r.name < d; });
  std::string last_sub;
  for (; it != rows_.end() && it->name.starts_with(dir); ++it) {
    std::string_view rest = std::string_view(it->name).substr(dir.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
      objects->push_back(ObjectInfo{prefix_ + it->name, it->size, it->etag, it->mtime});
      continue;
    }
    std::string sub = prefix_ + std::string(dir) + std::string(rest.substr(0, slash + 1));
    if (sub != last_sub) {
      prefixes->push_back(sub);
      last_sub = std::move(sub);
    }
  }
}

std::string manifest_line(const ObjectInfo& o) {
  nlohmann::json j;
  j["key"] = o.key;
  j["size"] = o.size;
  j["etag"] = o.etag;
  j["mtime"] = o.mtime;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace objcache::meta
