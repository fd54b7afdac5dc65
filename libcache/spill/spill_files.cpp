// SPDX-License-Identifier: Apache-2.0
#include "spill/spill_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "util/log.h"

namespace objcache::spill {
namespace {

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string errno_text(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof buf);  // GNU variant: returns the text
}

Error io_error(const std::string& what, const std::string& path, int err) {
  return make_error(err == ENOSPC ? Status::NoSpace : Status::IoError,
                    "spill: " + what + " " + path + ": " + errno_text(err));
}

// mkdir -p with mode 0700 for every directory it creates, then the
// directory itself, opened: it must be ours and writable by nobody else,
// or another user could swap, remove or plant the files in it. The files
// are then opened relative to this descriptor, so the directory checked is
// the one used.
Result<Fd> open_dir(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return io_error("cannot create directory", part, errno);
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOTDIR) return make_error(Status::InvalidArgument, "spill: " + dir + " is not a directory");
    return io_error("cannot open directory", dir, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", dir, errno);
  if (st.st_uid != ::geteuid()) {
    return make_error(Status::AccessDenied, "spill: " + dir + " belongs to uid " + std::to_string(st.st_uid) +
                                                ", not to this user (uid " + std::to_string(::geteuid()) +
                                                "): give the SSD tier a directory of its own");
  }
  if ((st.st_mode & 022) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Status::AccessDenied, "spill: " + dir + " is writable by others (mode " + mode +
                                                "): chmod 700 it");
  }
  return fd;
}

// Opens name in dir read-write, creating it 0600; refuses a symlink,
// anything but a regular file, a file another user owns and one others may
// write (readable ones are made private). path is for messages.
Result<Fd> open_private(int dir, const std::string& name, const std::string& path, int extra_flags) {
  Fd fd(::openat(dir, name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | extra_flags, 0600));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ELOOP) return make_error(Status::AccessDenied, "spill: " + path + " is a symlink");
    return io_error("cannot open", path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode))
    return make_error(Status::AccessDenied, "spill: " + path + " is not a regular file");
  if (st.st_uid != ::geteuid())
    return make_error(Status::AccessDenied, "spill: " + path + " belongs to another user");
  if ((st.st_mode & 022) != 0)
    return make_error(Status::AccessDenied, "spill: " + path + " is writable by others: chmod 600 it");
  if ((st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0600) != 0)
    return io_error("cannot chmod 0600", path, errno);
  return fd;
}

Result<std::uint64_t> file_bytes(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error("cannot stat", path, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint64_t random_nonce() {
  std::uint64_t n = 0;
  if (::getrandom(&n, sizeof n, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof n) && n != 0) return n;
  auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return checksum64(&t, sizeof t, static_cast<std::uint64_t>(::getpid())) | 1;
}

// Holds an exclusive flock() on the lock file for its lifetime.
class FileLock {
 public:
  static Result<FileLock> acquire(int dir, const std::string& name, const std::string& path) {
    auto fd = open_private(dir, name, path, 0);
    if (!fd) return fd.error();
    while (::flock(fd->get(), LOCK_EX) != 0) {
      if (errno != EINTR) return io_error("cannot lock", path, errno);
    }
    FileLock lock;
    lock.fd_ = std::move(*fd);
    return lock;
  }

 private:
  Fd fd_;  // closing it releases the lock
};

class Mapping {
 public:
  Mapping() = default;
  ~Mapping() { reset(); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  Result<void> map(int fd, std::size_t len, const std::string& path) {
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return io_error("cannot map", path, errno);
    addr_ = p;
    len_ = len;
    return {};
  }
  void* get() const { return addr_; }
  std::size_t size() const { return len_; }
  void* release() { return std::exchange(addr_, nullptr); }
  void reset() {
    if (addr_ != nullptr) ::munmap(addr_, len_);
    addr_ = nullptr;
  }

 private:
  void* addr_ = nullptr;
  std::size_t len_ = 0;
};

// Why an existing, mapped pair cannot be used; "" when it can.
std::string unusable_reason(const Mapping& m, const Geometry& g, std::uint64_t index_bytes,
                            std::uint64_t data_bytes) {
  const auto* h = static_cast<const IndexHeader*>(m.get());
  std::string why = SpillIndex::check(*h, g, index_bytes);
  if (!why.empty()) return why;
  if (data_bytes > g.capacity) return "data file is larger than the capacity";
  // relaxed: we hold the open lock; this is a plausibility check only.
  if (data_bytes == 0 && h->cursor.load(std::memory_order_relaxed) != 0)
    return "data file is empty but the index is not";
  return {};
}

}  // namespace

std::string spill_file_name(const std::string& cache_name, const char* suffix) {
  return "objcache-" + std::to_string(::geteuid()) + "-" + cache_name + suffix;
}

std::string spill_path(const std::string& dir, const std::string& cache_name, const char* suffix) {
  return dir + "/" + spill_file_name(cache_name, suffix);
}

Result<SpillFiles> open_spill_files(const std::string& dir, const std::string& cache_name,
                                    const Geometry& g) {
  auto dir_fd = open_dir(dir);
  if (!dir_fd) return dir_fd.error();
  const int d = dir_fd->get();
  const std::string index_name = spill_file_name(cache_name, ".index");
  const std::string data_name = spill_file_name(cache_name, ".data");
  const std::string lock_name = spill_file_name(cache_name, ".lock");
  const std::string index_path = dir + "/" + index_name;
  const std::string data_path = dir + "/" + data_name;
  // Opening, checking and recreating happen under one lock so that two
  // processes starting together agree on a single pair of files.
  auto lock = FileLock::acquire(d, lock_name, dir + "/" + lock_name);
  if (!lock) return lock.error();

  auto index_fd = open_private(d, index_name, index_path, 0);
  if (!index_fd) return index_fd.error();
  auto data_fd = open_private(d, data_name, data_path, 0);
  if (!data_fd) return data_fd.error();
  auto index_bytes = file_bytes(index_fd->get(), index_path);
  if (!index_bytes) return index_bytes.error();
  auto data_bytes = file_bytes(data_fd->get(), data_path);
  if (!data_bytes) return data_bytes.error();

  const std::uint64_t want_bytes = SpillIndex::file_size(g.slot_count);
  Mapping map;
  bool fresh = *index_bytes == 0;
  bool recreated = false;
  if (!fresh) {
    std::string why;
    if (*index_bytes < kIndexHeaderSize) {
      why = "index file is truncated";
    } else {
      if (auto r = map.map(index_fd->get(), *index_bytes, index_path); !r) return r.error();
      why = unusable_reason(map, g, *index_bytes, *data_bytes);
    }
    if (!why.empty()) {
      OC_WARN("spill: %s: %s; recreating it and %s (the SSD tier starts cold)",
              index_path.c_str(), why.c_str(), data_path.c_str());
      map.reset();
      // Unlink rather than truncate: a process still mapping the old index
      // must not take SIGBUS; it keeps its inodes until it closes them.
      ::unlinkat(d, index_name.c_str(), 0);
      ::unlinkat(d, data_name.c_str(), 0);
      index_fd = open_private(d, index_name, index_path, O_EXCL);
      if (!index_fd) return index_fd.error();
      data_fd = open_private(d, data_name, data_path, O_EXCL);
      if (!data_fd) return data_fd.error();
      fresh = true;
      recreated = true;
    }
  }
  if (fresh) {
    if (::ftruncate(data_fd->get(), 0) != 0) return io_error("cannot truncate", data_path, errno);
    if (::ftruncate(index_fd->get(), static_cast<off_t>(want_bytes)) != 0)
      return io_error("cannot size", index_path, errno);
    if (auto r = map.map(index_fd->get(), want_bytes, index_path); !r) return r.error();
    SpillIndex::format(map.get(), g, random_nonce());
  }

  // Blocks are read whole, at random: readahead would only read neighbours.
  (void)::posix_fadvise(data_fd->get(), 0, 0, POSIX_FADV_RANDOM);

  OC_DEBUG("spill: %s %s (capacity %llu bytes, page %llu bytes)", fresh ? "created" : "reopened",
           data_path.c_str(), static_cast<unsigned long long>(g.capacity),
           static_cast<unsigned long long>(g.page_size));
  SpillFiles files;
  const std::size_t len = map.size();
  files.index = std::make_unique<SpillIndex>(map.release(), len);
  files.data_fd = data_fd->release();
  files.data_path = data_path;
  files.recreated = recreated;
  return files;
}

}  // namespace objcache::spill
