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

// mkdir -p with mode 0700 for every directory it creates.
Result<void> make_dir(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return io_error("cannot create directory", part, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return io_error("cannot stat", dir, errno);
  if (!S_ISDIR(st.st_mode))
    return make_error(Status::InvalidArgument, "spill: " + dir + " is not a directory");
  return {};
}

// Opens path read-write, creating it 0600; refuses a symlink, anything but
// a regular file, and a file another user owns.
Result<Fd> open_private(const std::string& path, int extra_flags) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | extra_flags, 0600));
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
  static Result<FileLock> acquire(const std::string& path) {
    auto fd = open_private(path, 0);
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

std::string spill_path(const std::string& dir, const std::string& cache_name, const char* suffix) {
  return dir + "/objcache-" + std::to_string(::geteuid()) + "-" + cache_name + suffix;
}

Result<SpillFiles> open_spill_files(const std::string& dir, const std::string& cache_name,
                                    const Geometry& g) {
  if (auto r = make_dir(dir); !r) return r.error();
  const std::string index_path = spill_path(dir, cache_name, ".index");
  const std::string data_path = spill_path(dir, cache_name, ".data");
  // Opening, checking and recreating happen under one lock so that two
  // processes starting together agree on a single pair of files.
  auto lock = FileLock::acquire(spill_path(dir, cache_name, ".lock"));
  if (!lock) return lock.error();

  auto index_fd = open_private(index_path, 0);
  if (!index_fd) return index_fd.error();
  auto data_fd = open_private(data_path, 0);
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
      ::unlink(index_path.c_str());
      ::unlink(data_path.c_str());
      index_fd = open_private(index_path, O_EXCL);
      if (!index_fd) return index_fd.error();
      data_fd = open_private(data_path, O_EXCL);
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

  SpillFiles files;
  const std::size_t len = map.size();
  files.index = std::make_unique<SpillIndex>(map.release(), len);
  files.data_fd = data_fd->release();
  files.data_path = data_path;
  files.recreated = recreated;
  return files;
}

}  // namespace objcache::spill
