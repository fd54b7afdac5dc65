// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the configuration parser. Any text gives a Config or an
// error that names the file (a bad config names the file, line and key);
// never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "objcache/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto cfg = objcache::parse_config(text, "fuzz.toml");
  if (!cfg && cfg.error().message.find("fuzz.toml") == std::string::npos) std::abort();
  return 0;
}
