// SPDX-License-Identifier: Apache-2.0
#include "upload/streaming_upload.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "util/checksum.h"
#include "util/log.h"
#include "util/process.h"

namespace objcache::upload {
namespace {

constexpr std::uint64_t kFirstPart = 8ull << 20;  // S3 takes parts of 5 MiB and more
constexpr int kPartsPerSize = 1000;               // then the size doubles
constexpr int kMaxParts = 10000;
// How long finish() waits for a gate slot before going anyway (the gate
// shares the link; it must never stop an upload for good).
constexpr auto kGateWait = std::chrono::seconds(30);

// A read-only view of [start, start + len) of fd; unmapped when it goes.
class Mapping {
 public:
  Mapping(int fd, std::uint64_t start, std::uint64_t len) : len_(len) {
    if (len == 0) return;
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
    if (p != MAP_FAILED) base_ = static_cast<std::byte*>(p);
  }
  ~Mapping() {
    if (base_ != nullptr) ::munmap(base_, len_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return base_ != nullptr || len_ == 0; }
  std::span<const std::byte> bytes() const { return {base_, static_cast<std::size_t>(len_)}; }

 private:
  std::byte* base_ = nullptr;
  std::uint64_t len_ = 0;
};

// A part refused because its body was not the one signed (S3 and radosgw:
// XAmzContentSHA256Mismatch; BadDigest for a Content-MD5): its bytes
// changed between the hash and the send.
bool changed_while_sent(const Error& e) {
  return e.http_status == 400 && (e.message.find("XAmzContentSHA256Mismatch") != std::string::npos ||
                                  e.message.find("BadDigest") != std::string::npos);
}

}  // namespace

std::uint64_t part_size(int n) { return kFirstPart << ((n - 1) / kPartsPerSize); }

std::uint64_t part_start(int n) {
  std::uint64_t start = 0;
  for (int group = 0; group < (n - 1) / kPartsPerSize; ++group) start += kPartsPerSize * (kFirstPart << group);
  return start + static_cast<std::uint64_t>((n - 1) % kPartsPerSize) * part_size(n);
}

StreamingUpload::StreamingUpload(ObjectStore& store, std::string key, int fd, Options opts)
    : store_(store), owner_(proc::self()), fd_(fd), opts_(opts), key_(std::move(key)) {}

StreamingUpload::~StreamingUpload() {
  // A forked child's copy: the parts in flight are the parent's (their
  // replies never come here) and so is the upload.
  if (owner_ != proc::self()) return;
  std::unique_lock<std::mutex> lk(mu_);
  streaming_ = false;  // no part replies start new parts now
  cv_.wait(lk, [&] { return in_flight_ == 0; });  // the callbacks use this object
  if (!finished_) abort_multipart(lk);
}

std::string StreamingUpload::key() const {
  std::lock_guard<std::mutex> g(mu_);
  return key_;
}

bool StreamingUpload::rename_to(std::string key) {
  std::lock_guard<std::mutex> g(mu_);
  if (!upload_id_.empty() || !parts_.empty()) return false;
  key_ = std::move(key);
  return true;
}

std::string StreamingUpload::upload_id() const {
  std::lock_guard<std::mutex> g(mu_);
  return upload_id_;
}

std::uint64_t StreamingUpload::bytes_sent() const {
  std::lock_guard<std::mutex> g(mu_);
  return bytes_sent_;
}

std::uint64_t StreamingUpload::requests() const {
  std::lock_guard<std::mutex> g(mu_);
  return requests_;
}

void StreamingUpload::stop_streaming() {
  std::lock_guard<std::mutex> g(mu_);
  streaming_ = false;
}

void StreamingUpload::verify_at_finish() {
  std::lock_guard<std::mutex> g(mu_);
  verify_ = true;
}

void StreamingUpload::wrote(std::uint64_t offset, std::uint64_t len) {
  std::unique_lock<std::mutex> lk(mu_);
  if (!streaming_ || finished_ || len == 0) return;
  // Only an append to what was written in order keeps streaming: a write
  // into a part already sent, or past a hole, would make the parts sent
  // differ from the file.
  if (offset > written_end_ || offset < part_start(next_part_)) {
    streaming_ = false;
    return;
  }
  written_end_ = std::max(written_end_, offset + len);
  if (failed_) return;
  auto r = launch_ready(lk, /*block=*/false);
  if (!r) {
    failed_ = true;
    failure_ = r.error();
  }
}

Result<void> StreamingUpload::ensure_multipart(std::unique_lock<std::mutex>& lk) {
  if (!upload_id_.empty()) return {};
  const std::string key = key_;
  lk.unlock();
  auto id = store_.create_multipart(key);
  lk.lock();
  ++requests_;
  if (!id) return id.error();
  upload_id_ = *id;
  return {};
}

Result<void> StreamingUpload::launch_ready(std::unique_lock<std::mutex>& lk, bool block) {
  for (;;) {
    if (next_part_ > kMaxParts) return make_error(Status::InvalidArgument, "object larger than 10,000 parts");
    const std::uint64_t start = part_start(next_part_);
    const std::uint64_t end = std::min(start + part_size(next_part_), size_limit_);
    // A part goes when it is complete: all of it written, or (at finish)
    // the tail up to the file's size.
    if (end <= start || written_end_ < end || (size_limit_ == ~0ull && end - start < part_size(next_part_))) {
      return {};
    }
    if (in_flight_ >= std::max(1, opts_.concurrency)) {
      if (!block) return {};
      cv_.wait(lk, [&] { return in_flight_ < std::max(1, opts_.concurrency); });
      if (failed_) return failure_;
      continue;
    }
    if (auto m = ensure_multipart(lk); !m) return m.error();
    if (opts_.gate != nullptr) {
      lk.unlock();
      bool got = opts_.gate->try_acquire(fill::Priority::Prefetch, opts_.gate_cap);
      if (!got && block) got = opts_.gate->acquire(fill::Priority::Prefetch, opts_.gate_cap, kGateWait);
      if (!got && block) got = opts_.gate->try_acquire(fill::Priority::Demand, opts_.gate_cap);
      lk.lock();
      if (!got) return {};  // a later write or part reply tries again
    }
    Part p;
    p.number = next_part_;
    p.start = start;
    p.size = end - start;
    auto map = std::make_shared<Mapping>(fd_, p.start, p.size);
    if (!map->ok()) {
      if (opts_.gate != nullptr) opts_.gate->release();
      return make_error(Status::IoError, "cannot map the staged file for part " + std::to_string(p.number));
    }
    p.checksum = checksum64(map->bytes().data(), map->bytes().size());
    const std::size_t index = parts_.size();
    parts_.push_back(p);
    ++next_part_;
    ++in_flight_;
    ++requests_;
    const std::string key = key_;
    const std::string id = upload_id_;
    lk.unlock();
    store_.upload_part_async(key, id, p.number, map->bytes(), [this, index, map](Result<std::string> etag) {
      part_done(index, etag);
    });
    lk.lock();
  }
}

void StreamingUpload::part_done(std::size_t index, const Result<std::string>& etag) {
  if (opts_.gate != nullptr) opts_.gate->release();
  std::unique_lock<std::mutex> lk(mu_);
  Part& p = parts_[index];
  if (etag) {
    p.etag = *etag;
    p.done = true;
    bytes_sent_ += p.size;
  } else if (changed_while_sent(etag.error())) {
    // The program wrote into the part while it was on the wire (through a
    // mapping, or a write the shim saw too late): the server refused a body
    // that is not what was signed. Not a failure of the upload: finish()
    // finds the parts no longer match the file and sends it whole.
    OC_INFO("%s: part %d changed while it was sent (%s); the file goes whole at close", key_.c_str(), p.number,
            etag.error().describe().c_str());
    p.checksum = ~p.checksum;  // never matches: parts_match_file() says it changed
    verify_ = true;
    streaming_ = false;
  } else if (!failed_) {
    failed_ = true;
    failure_ = etag.error();
  }
  --in_flight_;
  // Parts that became complete while every slot was taken go now.
  if (!failed_ && !finished_ && streaming_) {
    auto r = launch_ready(lk, /*block=*/false);
    if (!r && !failed_) {
      failed_ = true;
      failure_ = r.error();
    }
  }
  cv_.notify_all();
}

Result<void> StreamingUpload::wait_in_flight(std::unique_lock<std::mutex>& lk) {
  cv_.wait(lk, [&] { return in_flight_ == 0; });
  if (failed_) return failure_;
  return {};
}

Result<bool> StreamingUpload::parts_match_file() {
  for (const Part& p : parts_) {
    Mapping map(fd_, p.start, p.size);
    if (!map.ok()) return make_error(Status::IoError, "cannot map the staged file to check part " + std::to_string(p.number));
    if (checksum64(map.bytes().data(), map.bytes().size()) != p.checksum) return false;
  }
  return true;
}

void StreamingUpload::abort_multipart(std::unique_lock<std::mutex>& lk) {
  if (upload_id_.empty()) return;
  const std::string key = key_;
  const std::string id = upload_id_;
  upload_id_.clear();
  lk.unlock();
  auto r = store_.abort_multipart(key, id);
  lk.lock();
  ++requests_;
  if (!r) {
    // Some servers (s3rver) answer 405; the parts then wait for the
    // bucket's lifecycle rule. Nothing of them is visible as an object.
    OC_INFO("could not abort the multipart upload of %s: %s", key.c_str(), r.error().describe().c_str());
  }
}

void StreamingUpload::abort() {
  if (owner_ != proc::self()) return;
  std::unique_lock<std::mutex> lk(mu_);
  streaming_ = false;
  cv_.wait(lk, [&] { return in_flight_ == 0; });
  finished_ = true;
  abort_multipart(lk);
}

Result<std::string> StreamingUpload::put_whole(std::uint64_t size) {
  Mapping map(fd_, 0, size);
  if (!map.ok()) return make_error(Status::IoError, "cannot map the staged file");
  std::string key;
  {
    std::lock_guard<std::mutex> g(mu_);
    key = key_;
  }
  if (opts_.gate != nullptr && !opts_.gate->acquire(fill::Priority::Prefetch, opts_.gate_cap, kGateWait)) {
    (void)opts_.gate->try_acquire(fill::Priority::Demand, opts_.gate_cap);
  }
  auto etag = store_.put(key, map.bytes());
  if (opts_.gate != nullptr) opts_.gate->release();
  std::lock_guard<std::mutex> g(mu_);
  ++requests_;
  if (etag) bytes_sent_ += size;
  return etag;
}

Result<std::string> StreamingUpload::finish(std::uint64_t size) {
  std::unique_lock<std::mutex> lk(mu_);
  auto fail = [&](Error e) -> Result<std::string> {
    cv_.wait(lk, [&] { return in_flight_ == 0; });
    finished_ = true;
    abort_multipart(lk);
    return e;
  };
  if (auto w = wait_in_flight(lk); !w) return fail(w.error());
  // Parts were sent of a file that has shrunk below them, or streaming
  // stopped: send it whole.
  bool restart = !streaming_ || (!parts_.empty() && size < part_start(next_part_));
  if (!restart && verify_ && !parts_.empty()) {
    lk.unlock();
    auto same = parts_match_file();
    lk.lock();
    if (!same) return fail(same.error());
    if (!*same) {
      OC_INFO("%s changed under parts already sent (writes the shim could not see): sending it whole",
              key_.c_str());
      restart = true;
    }
  }
  if (restart) {
    abort_multipart(lk);
    parts_.clear();
    next_part_ = 1;
  }
  if (parts_.empty() && size <= part_size(1)) {
    // Small: one PUT (no multipart upload was started).
    finished_ = true;
    lk.unlock();
    auto etag = put_whole(size);
    // Written through a mapping while it was sent: once more, as it is now.
    if (!etag && changed_while_sent(etag.error())) etag = put_whole(size);
    return etag;
  }
  written_end_ = size;
  size_limit_ = size;
  if (auto r = launch_ready(lk, /*block=*/true); !r) return fail(r.error());
  if (auto w = wait_in_flight(lk); !w) return fail(w.error());
  for (const Part& p : parts_) {
    if (!p.done) {  // refused as changed while it was sent, during close itself
      return fail(make_error(Status::IoError, "part " + std::to_string(p.number) + " of " + key_ +
                                                  " changed while it was sent at close"));
    }
  }
  std::vector<CompletedPart> done;
  done.reserve(parts_.size());
  for (const Part& p : parts_) done.push_back(CompletedPart{p.number, p.etag});
  const std::string key = key_;
  const std::string id = upload_id_;
  finished_ = true;
  lk.unlock();
  auto etag = store_.complete_multipart(key, id, done);
  lk.lock();
  ++requests_;
  if (!etag) {
    finished_ = false;
    return fail(etag.error());
  }
  upload_id_.clear();
  return etag;
}

}  // namespace objcache::upload
