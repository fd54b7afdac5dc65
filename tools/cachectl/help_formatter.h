// SPDX-License-Identifier: Apache-2.0
// How cachectl's help reads: the usage line built from the options each
// command declared, its details, its options, the list of commands. It
// formats strings for CLI11; it prints nothing and parses nothing.
#pragma once

#include <functional>  // before CLI11's FormatterFwd.hpp, which uses it without including it
#include <string>

#include <CLI/FormatterFwd.hpp>

namespace objcache::cachectl {

// "cachectl [--config FILE] stats [--json | --prometheus] [--watch SECONDS]":
// the command line app takes, from the options and arguments it declares
// (options that exclude each other are one choice). A command with
// subcommands ends in "COMMAND [ARGS]".
std::string usage_line(const CLI::App& app);

class HelpFormatter final : public CLI::FormatterBase {
 public:
  // The usage line, the app's details (its footer; a command's description
  // is its line in the parent's list of commands), its commands, then its
  // arguments and options.
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override;
};

}  // namespace objcache::cachectl
