// SPDX-License-Identifier: Apache-2.0
// Runs a program to completion, capturing stdout, stderr and exit status.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace objcache::test {

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;
  std::string err;
};

// argv[0] is looked up in PATH unless it contains '/'. env entries are
// added to (or override) this process's environment; a value of "\x01"
// removes the variable.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::vector<std::pair<std::string, std::string>>& env = {},
                          const std::string& stdin_data = "");

}  // namespace objcache::test
