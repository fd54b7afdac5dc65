// SPDX-License-Identifier: Apache-2.0
#include "upload/staging_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

namespace objcache::upload {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Sidecars are padded with blanks to this size when they are shorter, so
// that a later state change can be written over the old bytes in place
// when the staging disk is full (the case that most needs it recorded: a
// write failed with ENOSPC and the file must not be uploaded as it is).
constexpr std::size_t kSidecarReserve = 4096;

std::string padded(std::string text) {
  if (text.size() < kSidecarReserve) {
    text.pop_back();  // the final newline
    text.append(kSidecarReserve - 1 - text.size(), ' ');
    text.push_back('\n');
  }
  return text;
}

// Writes text over path's first bytes (no truncation, no new blocks when
// path already holds as many): not atomic, for a full disk only.
Result<void> overwrite_in_place(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return make_error(Status::IoError, "cannot write " + path + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != text.size()) {
    ::close(fd);
    return make_error(Status::NoSpace, "cannot write " + path + " in place: it has another size");
  }
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      return make_error(e == ENOSPC ? Status::NoSpace : Status::IoError, "cannot write " + path + ": " + errno_text(e));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return {};
}

Result<void> write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Status::IoError, "cannot write " + tmp + ": " + errno_text(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(e == ENOSPC ? Status::NoSpace : Status::IoError, "cannot write " + tmp + ": " + errno_text(e));
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return make_error(Status::IoError, "cannot write " + path + ": " + errno_text(e));
  }
  return {};
}

std::string to_json(const StagedInfo& i) {
  nlohmann::json j;
  j["version"] = 1;
  j["bucket"] = i.bucket;
  j["key"] = i.key;
  j["path"] = i.local_path;
  j["created"] = i.created;
  j["writer"] = i.writer;
  j["state"] = i.state;
  j["error"] = i.error;
  j["upload_id"] = i.upload_id;
  j["closed"] = i.closed;
  return padded(j.dump(2) + "\n");
}

std::optional<StagedInfo> from_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    StagedInfo i;
    i.bucket = j.at("bucket").get<std::string>();
    i.key = j.at("key").get<std::string>();
    i.local_path = j.value("path", std::string());
    i.created = j.value("created", std::int64_t{0});
    i.writer = j.value("writer", 0);
    i.state = j.value("state", std::string("writing"));
    i.error = j.value("error", std::string());
    i.upload_id = j.value("upload_id", std::string());
    i.closed = j.value("closed", false);
    return i;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0 || out.size() > (1u << 20)) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

std::string default_staging_dir(const std::string& staging_dir, const std::string& spill_dir) {
  if (!staging_dir.empty()) return staging_dir;
  if (!spill_dir.empty()) return spill_dir + "/staging";
  return "/var/tmp/objcache/staging";
}

Result<StagingDir> StagingDir::open(const std::string& dir) {
  if (dir.empty() || dir.front() != '/') {
    return make_error(Status::InvalidArgument, "staging directory must be an absolute path, got \"" + dir + "\"");
  }
  // Make the parents too (0700 for each we create).
  for (std::size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(Status::IoError, "cannot create the staging directory " + part + ": " + errno_text(errno));
    }
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return make_error(Status::IoError, "cannot use the staging directory " + dir + ": " + errno_text(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(Status::AccessDenied, "the staging directory " + dir + " is not a directory");
  }
  if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
    return make_error(Status::AccessDenied,
                      "the staging directory " + dir +
                          " is owned by another user or writable by others; refusing it (chmod 700 it, or set "
                          "cache.staging_dir to a directory of your own)");
  }
  return StagingDir(dir);
}

Result<StagedInfo> StagingDir::create(const std::string& bucket, const std::string& key,
                                      const std::string& local_path) const {
  const auto now = std::chrono::system_clock::now();
  StagedInfo info;
  info.bucket = bucket;
  info.key = key;
  info.local_path = local_path;
  info.created = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  info.writer = ::getpid();
  info.state = "writing";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string base = dir_ + "/" + std::to_string(ms) + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(std::random_device{}() & 0xffffff);
    info.data_path = base + ".data";
    info.meta_path = base + ".json";
    int fd = ::open(info.data_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return make_error(errno == ENOSPC ? Status::NoSpace : Status::IoError,
                        "cannot create a staged file in " + dir_ + ": " + errno_text(errno));
    }
    ::close(fd);
    auto w = write_file_atomically(info.meta_path, to_json(info));
    if (!w) {
      ::unlink(info.data_path.c_str());
      return w.error();
    }
    return info;
  }
  return make_error(Status::IoError, "cannot name a staged file in " + dir_);
}

Result<void> StagingDir::update(const StagedInfo& info) const {
  const std::string text = to_json(info);
  auto r = write_file_atomically(info.meta_path, text);
  if (!r && r.error().status == Status::NoSpace) return overwrite_in_place(info.meta_path, text);
  return r;
}

void StagingDir::remove(const StagedInfo& info) const {
  ::unlink(info.data_path.c_str());
  ::unlink(info.meta_path.c_str());
}

std::vector<StagedInfo> StagingDir::list() const {
  std::vector<StagedInfo> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    const std::string meta = dir_ + "/" + name;
    auto info = from_json(read_small_file(meta));
    if (!info) continue;
    info->meta_path = meta;
    info->data_path = meta.substr(0, meta.size() - 5) + ".data";
    struct stat st {};
    if (::stat(info->data_path.c_str(), &st) != 0) continue;
    info->size = static_cast<std::uint64_t>(st.st_size);
    out.push_back(std::move(*info));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const StagedInfo& a, const StagedInfo& b) {
    return a.created != b.created ? a.created < b.created : a.data_path < b.data_path;
  });
  return out;
}

Result<StagedInfo> StagingDir::read(const std::string& data_path) const {
  constexpr std::string_view kData = ".data";
  const std::string prefix = dir_ + "/";
  if (data_path.size() <= prefix.size() + kData.size() || data_path.compare(0, prefix.size(), prefix) != 0 ||
      data_path.find('/', prefix.size()) != std::string::npos ||
      data_path.compare(data_path.size() - kData.size(), kData.size(), kData) != 0) {
    return make_error(Status::InvalidArgument, "not a staged file of " + dir_ + ": " + data_path);
  }
  const std::string meta = data_path.substr(0, data_path.size() - kData.size()) + ".json";
  auto info = from_json(read_small_file(meta));
  if (!info) return make_error(Status::NotFound, "no readable sidecar for " + data_path);
  info->data_path = data_path;
  info->meta_path = meta;
  return *info;
}

}  // namespace objcache::upload
