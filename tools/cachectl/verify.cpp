// SPDX-License-Identifier: Apache-2.0
// cachectl verify: checks the xxh3 checksum of every cached page, in RAM
// and on the spill tier. A bad page is dropped (the next read fetches it
// again) and the exit status is 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "objcache/page_cache.h"

namespace objcache::cachectl {
namespace {

constexpr const char* kVerifySummary = "check the checksum of every cached page, RAM and spill";
constexpr const char* kVerifyDetails =
    "Checks the checksum of every cached page, in RAM and on the spill tier.\n"
    "Damaged pages are dropped, so the next read fetches them again. Exit\n"
    "status 0 when every page was good, 1 when some were dropped.\n";

int run_verify(const GlobalOptions& g, Output out) {
  auto cfg = load_global_config(g);
  if (!cfg) {
    std::fprintf(stderr, "cachectl: %s\n", cfg.error().message.c_str());
    return 2;
  }
  auto cache = attach_cache(*cfg);
  if (!cache) {
    std::fprintf(stderr, "cachectl verify: %s\n", cache.error().message.c_str());
    return cache.status() == Status::NotFound ? 0 : 2;
  }
  VerifyResult r = (*cache)->verify();
  if (out == Output::Json) {
    nlohmann::json j{{"ram_pages", r.ram_items}, {"ram_bad", r.ram_bad}, {"spill_blocks", r.spill_blocks},
                     {"spill_bad", r.spill_bad}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("RAM    %llu pages checked, %llu bad%s\n", static_cast<unsigned long long>(r.ram_items),
                static_cast<unsigned long long>(r.ram_bad), r.ram_bad > 0 ? " (dropped)" : "");
    std::printf("spill  %llu blocks checked, %llu bad%s\n", static_cast<unsigned long long>(r.spill_blocks),
                static_cast<unsigned long long>(r.spill_bad), r.spill_bad > 0 ? " (dropped)" : "");
  }
  return r.ram_bad + r.spill_bad > 0 ? 1 : 0;
}

}  // namespace

Command add_verify(CLI::App& app) {
  CLI::App* cmd = add_command(app, "verify", kVerifySummary, kVerifyDetails);
  auto out = std::make_shared<Output>(Output::Text);
  cmd->add_flag_callback("--json", [out] { *out = Output::Json; }, "the counts as one JSON object");
  return Command{cmd, [out](const GlobalOptions& g) { return run_verify(g, *out); }};
}

}  // namespace objcache::cachectl
