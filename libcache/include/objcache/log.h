// SPDX-License-Identifier: Apache-2.0
// Log levels of objcache's own messages. They go to a file or stderr,
// never stdout (objcache lives inside other people's programs), and never
// carry a secret. The shim and cachectl configure them from [log].
#pragma once

namespace objcache {

enum class LogLevel { Error, Warn, Info, Debug };

}  // namespace objcache
