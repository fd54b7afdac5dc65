// SPDX-License-Identifier: Apache-2.0
// cachectl uploads: the files written to writable mounts whose objects are
// not in the bucket yet (staged, see Vfs::staged_uploads): lists them, and
// uploads (--retry) or removes (--discard) those no live process is still
// writing. What a PATH selects, and what is printed per file, is here.
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "objcache/vfs.h"
#include "staging.h"

namespace objcache::cachectl {
namespace {

constexpr const char* kUploadsSummary = "files written to a mount but not yet in the bucket: list, retry, discard";
constexpr const char* kUploadsDetails =
    "Lists the files written to writable mounts whose objects are not in the\n"
    "bucket yet: their upload failed, their writer died, or it is still\n"
    "writing. One line each: the path written, the object, size, age, state\n"
    "and last error. --retry uploads them, --discard removes them (and aborts\n"
    "a multipart upload left open): every staged file, or those under each\n"
    "PATH, but never one a live process is still writing or uploading.\n"
    "Exit status 1 when an upload failed (the file stays staged, with the\n"
    "new error) or a PATH names nothing of ours.\n";

enum class Action { List, Retry, Discard };

struct UploadsOptions {
  Output output = Output::Text;
  Action action = Action::List;
  std::vector<std::string> paths;  // none: every staged file
};

// One staged file and what happened to it.
struct Row {
  Vfs::StagedUpload u;
  Writer writer = Writer::Gone;
  const char* done = nullptr;  // "uploaded", "failed", "discarded", "skipped"; nullptr when listing
};

std::string cwd() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof buf) != nullptr ? std::string(buf) : std::string("/");
}

// path with symlinks resolved when it exists, else as given (absolute).
std::string real(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return buf;
  return path.empty() || path[0] == '/' ? path : cwd() + "/" + path;
}

std::string object_of(const Vfs::StagedUpload& u) { return "s3://" + u.bucket + "/" + u.key; }

std::int64_t age_of(const Vfs::StagedUpload& u) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return u.created > 0 && now > u.created ? now - u.created : 0;
}

std::string format_age(std::int64_t s) {
  char b[32];
  if (s >= 86400) std::snprintf(b, sizeof b, "%lldd%02lldh", static_cast<long long>(s / 86400), static_cast<long long>(s / 3600 % 24));
  else if (s >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else if (s >= 60) std::snprintf(b, sizeof b, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else std::snprintf(b, sizeof b, "%llds", static_cast<long long>(s));
  return b;
}

// "being written by pid 12", "writer pid 12 is gone", or "".
std::string writer_note(const Row& r) {
  const std::string pid = std::to_string(r.u.writer);
  switch (r.writer) {
    case Writer::Writing: return "being written by pid " + pid;
    case Writer::Uploading: return "being uploaded by pid " + pid;
    case Writer::Gone: return r.u.state == "failed" || r.u.state == "incomplete" || r.u.writer <= 0 ? "" : "writer pid " + pid + " is gone";
    case Writer::Done: return "";
  }
  return "";
}

// What one PATH selects: the staged files under a local path of a mount
// (by their key now, or the path the program wrote), or the staged file
// whose data or sidecar file it is.
class Selector {
 public:
  Selector(const Config& cfg, const MountTable& mounts, const std::string& path)
      : cfg_(cfg), mounts_(mounts), path_(path), at_(mounts.resolve(path, cwd())) {
    if (!at_.ours()) real_ = real(path);
  }

  const std::string& path() const { return path_; }
  bool under_a_mount() const { return at_.ours(); }

  bool selects(const Vfs::StagedUpload& u) const {
    if (!at_.ours()) return real_ == real(u.data_path) || real_ == real(u.meta_path);
    if (cfg_.mounts[static_cast<std::size_t>(at_.mount)].source.bucket != u.bucket) return false;
    if (key_under(u.key)) return true;
    if (u.local_path.empty()) return false;
    Resolved written = mounts_.resolve(u.local_path);
    return written.mount == at_.mount && key_under(written.key);
  }

 private:
  bool key_under(const std::string& key) const {
    if (at_.is_root) return key.rfind(at_.key, 0) == 0;
    return key == at_.key || key.rfind(at_.key + "/", 0) == 0;
  }

  const Config& cfg_;
  const MountTable& mounts_;
  std::string path_;
  Resolved at_;
  std::string real_;  // a PATH under no mount, resolved
};

nlohmann::json to_json(const Row& r) {
  nlohmann::json j;
  j["path"] = r.u.local_path;
  j["object"] = object_of(r.u);
  j["bucket"] = r.u.bucket;
  j["key"] = r.u.key;
  j["size_bytes"] = r.u.size;
  j["created"] = r.u.created;
  j["age_seconds"] = age_of(r.u);
  j["state"] = r.u.state;
  j["error"] = r.u.error;
  j["writer"] = r.u.writer;
  j["writer_alive"] = r.writer != Writer::Gone;
  j["being_written"] = busy(r.writer);
  j["staged_path"] = r.u.data_path;
  if (r.done != nullptr) j["action"] = r.done;
  return j;
}

void print_list(const std::vector<Row>& rows, const std::string& dir) {
  std::size_t wpath = 0;
  std::size_t wobject = 0;
  std::uint64_t bytes = 0;
  std::size_t busy_files = 0;
  for (const Row& r : rows) {
    wpath = std::max(wpath, r.u.local_path.size());
    wobject = std::max(wobject, object_of(r.u).size());
    bytes += r.u.size;
    busy_files += busy(r.writer) ? 1 : 0;
  }
  for (const Row& r : rows) {
    std::string line = r.u.local_path;
    line.resize(wpath + 2, ' ');
    line += object_of(r.u);
    line.resize(wpath + 2 + wobject + 2, ' ');
    char cols[96];
    std::snprintf(cols, sizeof cols, "%10s  %7s  %s", format_size(r.u.size).c_str(), format_age(age_of(r.u)).c_str(),
                  r.u.state.c_str());
    line += cols;
    if (std::string note = writer_note(r); !note.empty()) line += " (" + note + ")";
    if (!r.u.error.empty()) line += "  last error: " + r.u.error;
    std::printf("%s\n", line.c_str());
  }
  if (rows.empty()) {
    std::printf("no staged files in %s\n", dir.c_str());
    return;
  }
  std::printf("%zu staged file%s, %s, in %s", rows.size(), rows.size() == 1 ? "" : "s", format_size(bytes).c_str(),
              dir.c_str());
  if (busy_files > 0) std::printf("; %zu still being written", busy_files);
  std::printf("\n");
}

// Uploads or discards each row that no live writer owns; prints as it goes.
// Returns the number that failed.
int act(Vfs& vfs, Action action, std::vector<Row>& rows, Output out) {
  int failed = 0;
  int done = 0;
  int skipped = 0;
  std::uint64_t bytes = 0;
  const bool text = out == Output::Text;
  for (Row& r : rows) {
    const std::string what = (r.u.local_path.empty() ? r.u.data_path : r.u.local_path) + " -> " + object_of(r.u);
    if (busy(r.writer)) {
      r.done = "skipped";
      ++skipped;
      if (text) std::printf("skipped    %s: %s\n", what.c_str(), writer_note(r).c_str());
      continue;
    }
    if (action == Action::Discard && text) {
      std::printf("discarding %s (%s, %s old, staged in %s)\n", what.c_str(), format_size(r.u.size).c_str(),
                  format_age(age_of(r.u)).c_str(), r.u.data_path.c_str());
      std::fflush(stdout);
    }
    auto res = action == Action::Retry ? vfs.retry_upload(r.u) : vfs.discard_upload(r.u);
    if (!res) {
      r.done = "failed";
      r.u.error = res.error().describe();
      ++failed;
      if (text) {
        std::printf("FAILED     %s: %s (still staged in %s)\n", what.c_str(), r.u.error.c_str(),
                    r.u.data_path.c_str());
      }
    } else {
      r.done = action == Action::Retry ? "uploaded" : "discarded";
      ++done;
      bytes += r.u.size;
      if (text && action == Action::Retry) std::printf("uploaded   %s (%s)\n", what.c_str(), format_size(r.u.size).c_str());
    }
    std::fflush(stdout);
  }
  if (!text) {
    nlohmann::json j = nlohmann::json::array();
    for (const Row& r : rows) j.push_back(to_json(r));
    std::printf("%s\n", j.dump(2).c_str());
    return failed;
  }
  std::printf("%s %d file%s (%s)", action == Action::Retry ? "uploaded" : "discarded", done, done == 1 ? "" : "s",
              format_size(bytes).c_str());
  if (failed > 0) std::printf(", %d failed", failed);
  if (skipped > 0) std::printf(", skipped %d still being written", skipped);
  std::printf("\n");
  return failed;
}

int run_uploads(const GlobalOptions& g, const UploadsOptions& o) {
  auto cfg = load_global_config(g);
  if (!cfg) {
    std::fprintf(stderr, "cachectl: %s\n", cfg.error().message.c_str());
    return 2;
  }
  auto vfs = open_vfs(*cfg);
  if (!vfs) {
    std::fprintf(stderr, "cachectl uploads: %s\n", vfs.error().describe().c_str());
    return 2;
  }
  const std::string dir = staging_dir_of(cfg->cache);
  std::vector<Vfs::StagedUpload> staged;
  struct stat st {};
  // A directory that was never made holds nothing: listing does not make it.
  if (::stat(dir.c_str(), &st) == 0 || errno != ENOENT) {
    auto list = (*vfs)->staged_uploads();
    if (!list) {
      std::fprintf(stderr, "cachectl uploads: %s\n", list.error().describe().c_str());
      return 1;
    }
    staged = std::move(*list);
  }

  int rc = 0;
  std::vector<Selector> selectors;
  for (const std::string& p : o.paths) selectors.emplace_back(*cfg, (*vfs)->mounts(), p);
  std::vector<Row> rows;
  for (Vfs::StagedUpload& u : staged) {
    bool selected = selectors.empty();
    for (const Selector& s : selectors) selected = selected || s.selects(u);
    if (!selected) continue;
    Row r;
    r.writer = writer_of(u);
    r.u = std::move(u);
    rows.push_back(std::move(r));
  }
  for (const Selector& s : selectors) {
    bool any = false;
    for (const Row& r : rows) any = any || s.selects(r.u);
    if (any) continue;
    if (!s.under_a_mount()) {
      std::string mounts;
      for (const MountConfig& m : cfg->mounts) mounts += (mounts.empty() ? "" : ", ") + m.path;
      std::fprintf(stderr, "cachectl uploads: '%s' is under no mount (mounts: %s) and is no staged file in %s\n",
                   s.path().c_str(), mounts.empty() ? "none" : mounts.c_str(), dir.c_str());
      rc = 1;
    } else if (o.output == Output::Text) {
      std::printf("nothing staged under %s\n", s.path().c_str());
    }
  }

  if (o.action == Action::List) {
    if (o.output == Output::Json) {
      nlohmann::json j = nlohmann::json::array();
      for (const Row& r : rows) j.push_back(to_json(r));
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      print_list(rows, dir);
    }
    return rc;
  }
  if (act(**vfs, o.action, rows, o.output) > 0) rc = 1;
  return rc;
}

}  // namespace

Command add_uploads(CLI::App& app) {
  CLI::App* cmd = add_command(app, "uploads", kUploadsSummary, kUploadsDetails);
  auto o = std::make_shared<UploadsOptions>();
  cmd->add_flag_callback("--json", [o] { o->output = Output::Json; }, "a JSON list, one object per staged file");
  CLI::Option* retry = cmd->add_flag_callback(
      "--retry", [o] { o->action = Action::Retry; }, "upload them; a failure keeps the file staged");
  cmd->add_flag_callback("--discard", [o] { o->action = Action::Discard; }, "remove them: their bytes are lost")
      ->excludes(retry);
  cmd->add_option("PATH", o->paths, "a path under a mount (what is staged under it), or a staged file");
  return Command{cmd, [o](const GlobalOptions& g) { return run_uploads(g, *o); }};
}

}  // namespace objcache::cachectl
