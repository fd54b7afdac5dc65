// SPDX-License-Identifier: Apache-2.0
// iostreams over the library API: a std::streambuf over a File (reads,
// seeks) and one over a Writer (writes), and the istream / ostream that own
// them, so code that reads or writes a checkpoint with iostreams works
// unchanged. Header only (a few lines over cache.h each); an error shows
// as the stream's badbit, never as an exception unless the caller asked
// for exceptions() on the stream.
#pragma once

#include <algorithm>
#include <istream>
#include <ostream>
#include <streambuf>
#include <utility>
#include <vector>

#include "objcache/cache.h"

namespace objcache {

// Reads a File through a buffer of `buffer` bytes (default 256 KiB); seeks
// within the buffer cost nothing. The File must outlive the buffer.
class FileStreamBuf : public std::streambuf {
 public:
  explicit FileStreamBuf(File& file, std::size_t buffer = 256 << 10) : file_(file), buf_(std::max<std::size_t>(buffer, 1)) {
    setg(buf_.data(), buf_.data(), buf_.data());
  }
  // The last read's error (Status::Ok if none).
  Status status() const { return status_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    start_ += static_cast<std::uint64_t>(egptr() - eback());
    auto r = file_.pread(start_, std::as_writable_bytes(std::span<char>(buf_)));
    if (!r) {
      status_ = r.status();
      setg(buf_.data(), buf_.data(), buf_.data());
      throw_bad_read();  // sets badbit through the istream's catch
    }
    setg(buf_.data(), buf_.data(), buf_.data() + *r);
    if (*r == 0) return traits_type::eof();
    return traits_type::to_int_type(*gptr());
  }

  std::streamsize xsgetn(char* s, std::streamsize n) override {
    std::streamsize done = 0;
    while (done < n) {
      if (gptr() == egptr()) {
        // Large reads go straight into the caller's buffer: no copy through ours.
        if (n - done >= static_cast<std::streamsize>(buf_.size())) {
          start_ += static_cast<std::uint64_t>(egptr() - eback());
          setg(buf_.data(), buf_.data(), buf_.data());
          auto r = file_.pread(start_, std::as_writable_bytes(std::span<char>(s + done, static_cast<std::size_t>(n - done))));
          if (!r) {
            status_ = r.status();
            throw_bad_read();
          }
          start_ += *r;
          done += static_cast<std::streamsize>(*r);
          if (*r == 0) break;
          continue;
        }
        if (traits_type::eq_int_type(underflow(), traits_type::eof())) break;
      }
      const std::streamsize k = std::min<std::streamsize>(n - done, egptr() - gptr());
      std::copy_n(gptr(), k, s + done);
      gbump(static_cast<int>(k));
      done += k;
    }
    return done;
  }

  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode which) override {
    if (!(which & std::ios_base::in)) return pos_type(off_type(-1));
    const std::uint64_t cur = start_ + static_cast<std::uint64_t>(gptr() - eback());
    std::int64_t base = 0;
    if (dir == std::ios_base::cur) base = static_cast<std::int64_t>(cur);
    else if (dir == std::ios_base::end) base = static_cast<std::int64_t>(file_.size());
    return seekpos(pos_type(off_type(base + off)), which);
  }

  pos_type seekpos(pos_type pos, std::ios_base::openmode which) override {
    const off_type p = off_type(pos);
    if (!(which & std::ios_base::in) || p < 0) return pos_type(off_type(-1));
    const auto target = static_cast<std::uint64_t>(p);
    const std::uint64_t end = start_ + static_cast<std::uint64_t>(egptr() - eback());
    if (target >= start_ && target <= end) {
      setg(eback(), eback() + (target - start_), egptr());
    } else {
      start_ = target;
      setg(buf_.data(), buf_.data(), buf_.data());
    }
    return pos;
  }

  std::streamsize showmanyc() override {
    const std::uint64_t cur = start_ + static_cast<std::uint64_t>(gptr() - eback());
    return cur >= file_.size() ? -1 : static_cast<std::streamsize>(file_.size() - cur);
  }

 private:
  // istream's unformatted and formatted reads catch what the buffer
  // throws and set badbit (rethrowing only if the caller enabled it).
  [[noreturn]] static void throw_bad_read() { throw std::ios_base::failure("objcache: read failed"); }

  File& file_;
  std::vector<char> buf_;
  std::uint64_t start_ = 0;  // object offset of buf_[0]
  Status status_ = Status::Ok;
};

// Writes to a Writer through a buffer (default 1 MiB). commit() is the
// owner's (WriterOStream::commit); the Writer must outlive the buffer.
class WriterStreamBuf : public std::streambuf {
 public:
  explicit WriterStreamBuf(Writer& writer, std::size_t buffer = 1 << 20) : writer_(writer), buf_(std::max<std::size_t>(buffer, 1)) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  Status status() const { return status_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= static_cast<std::streamsize>(buf_.size())) {
      // Large writes go straight to the writer, after what is buffered.
      if (!flush_buffer()) return 0;
      if (!put(s, static_cast<std::size_t>(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }

  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool put(const char* s, std::size_t n) {
    auto r = writer_.write(std::string_view(s, n));
    if (!r) status_ = r.status();
    return r.ok();
  }
  bool flush_buffer() {
    const std::size_t n = static_cast<std::size_t>(pptr() - pbase());
    setp(buf_.data(), buf_.data() + buf_.size());
    return n == 0 || put(buf_.data(), n);
  }

  Writer& writer_;
  std::vector<char> buf_;
  Status status_ = Status::Ok;
};

// An istream that owns its File.
class FileIStream : public std::istream {
 public:
  explicit FileIStream(File file) : std::istream(nullptr), file_(std::move(file)), buf_(file_) { rdbuf(&buf_); }
  File& file() { return file_; }
  Status status() const { return buf_.status(); }

 private:
  File file_;
  FileStreamBuf buf_;
};

// An ostream that owns its Writer; the object exists once commit() succeeds.
// Destroyed without commit: the upload is aborted.
class WriterOStream : public std::ostream {
 public:
  explicit WriterOStream(Writer writer) : std::ostream(nullptr), writer_(std::move(writer)), buf_(writer_) { rdbuf(&buf_); }
  // Flushes the stream and commits the object.
  Result<void> commit() {
    flush();
    if (!good()) {
      Status s = buf_.status() == Status::Ok ? Status::IoError : buf_.status();
      writer_.abort();
      return make_error(s, "the stream failed before commit");
    }
    return writer_.commit();
  }
  Writer& writer() { return writer_; }

 private:
  Writer writer_;
  WriterStreamBuf buf_;
};

}  // namespace objcache
