// SPDX-License-Identifier: Apache-2.0
// Writes a blob with objcache::Writer (1 GiB unless told otherwise), then
// opens it and reads it back through Cache, checking every byte.
//
//   write_blob [--config FILE] [--size BYTES|1GiB|...] s3://bucket/key
#include <objcache/cache.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

// The byte at offset i: a pattern that a shifted or repeated chunk breaks.
void fill(std::uint64_t offset, std::span<std::byte> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull;
    out[i] = static_cast<std::byte>(x >> 56);
  }
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, where;
  std::uint64_t size = 1ull << 30;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (a == "--size" && i + 1 < argc) {
      auto s = objcache::parse_size(argv[++i]);
      if (!s) {
        std::fprintf(stderr, "write_blob: --size: %s\n", s.error().describe().c_str());
        return 2;
      }
      size = *s;
    } else {
      where = a;
    }
  }
  if (where.empty()) {
    std::fprintf(stderr, "usage: write_blob [--config FILE] [--size BYTES] s3://bucket/key\n");
    return 2;
  }
  if (config.empty()) config = objcache::find_config_path().value_or("");
  auto cache = objcache::Cache::open_file(config);
  if (!cache) {
    std::fprintf(stderr, "write_blob: %s\n", cache.error().describe().c_str());
    return 1;
  }
  std::vector<std::byte> buf(8u << 20);
  auto start = std::chrono::steady_clock::now();
  {
    auto w = (*cache)->create(where);
    if (!w) {
      std::fprintf(stderr, "write_blob: %s: %s\n", where.c_str(), w.error().describe().c_str());
      return 1;
    }
    for (std::uint64_t off = 0; off < size; off += buf.size()) {
      auto chunk = std::span<std::byte>(buf).first(static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off)));
      fill(off, chunk);
      if (auto r = w->write(chunk); !r) {
        std::fprintf(stderr, "write_blob: write: %s\n", r.error().describe().c_str());
        return 1;
      }
    }
    if (auto r = w->commit(); !r) {
      std::fprintf(stderr, "write_blob: commit: %s\n", r.error().describe().c_str());
      return 1;
    }
  }
  const double wrote = since(start);
  start = std::chrono::steady_clock::now();
  auto f = (*cache)->open(where);
  if (!f) {
    std::fprintf(stderr, "write_blob: open: %s\n", f.error().describe().c_str());
    return 1;
  }
  if (f->size() != size) {
    std::fprintf(stderr, "write_blob: size %llu, wrote %llu\n", static_cast<unsigned long long>(f->size()),
                 static_cast<unsigned long long>(size));
    return 1;
  }
  std::vector<std::byte> want(buf.size());
  for (std::uint64_t off = 0; off < size; off += buf.size()) {
    auto got = f->read(buf);
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - off));
    if (!got || *got != n) {
      std::fprintf(stderr, "write_blob: read at %llu: %s\n", static_cast<unsigned long long>(off),
                   got ? "short" : got.error().describe().c_str());
      return 1;
    }
    fill(off, std::span<std::byte>(want).first(n));
    if (std::memcmp(buf.data(), want.data(), n) != 0) {
      std::fprintf(stderr, "write_blob: bytes differ in [%llu, +%zu)\n", static_cast<unsigned long long>(off), n);
      return 1;
    }
  }
  const double read = since(start);
  const double mib = static_cast<double>(size) / (1 << 20);
  std::printf("write_blob: %s, %llu bytes: written and committed in %.3f s (%.1f MiB/s), read back and checked in %.3f s (%.1f MiB/s)\n",
              where.c_str(), static_cast<unsigned long long>(size), wrote, mib / wrote, read, mib / read);
  return 0;
}
