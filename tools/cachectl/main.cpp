// SPDX-License-Identifier: Apache-2.0
// cachectl: inspect and control an objcache node. This file owns the one
// command line (CLI11): the global options, the table of commands, and
// what a usage error says; then it runs the command that was named.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "commands.h"
#include "help_formatter.h"

namespace {

using objcache::cachectl::Command;

constexpr const char* kDetails =
    "Inspects and controls the objcache cache of this node and the mounts\n"
    "its configuration names.\n"
    "\n"
    "The configuration is FILE, else $OBJCACHE_CONFIG, else\n"
    "~/.config/objcache/config.toml, else /etc/objcache/config.toml.\n"
    "Run 'cachectl COMMAND --help' for a command's options.\n";

// Every command, in the order 'cachectl --help' lists them. A new command
// is one add_* function (its options, its help, what runs it) and its name
// here.
using AddCommand = Command (*)(CLI::App&);
constexpr AddCommand kCommands[] = {
    objcache::cachectl::add_check, objcache::cachectl::add_stats, objcache::cachectl::add_load,
    objcache::cachectl::add_ls,    objcache::cachectl::add_evict, objcache::cachectl::add_pin,
    objcache::cachectl::add_unpin, objcache::cachectl::add_verify, objcache::cachectl::add_uploads,
    objcache::cachectl::add_manifest,
};

// The command whose arguments held the error: the first, from the top,
// with arguments it did not take, else the last command named.
const CLI::App& where(const CLI::App& top) {
  const CLI::App* a = &top;
  while (a->remaining().empty() && !a->get_subcommands().empty()) a = a->get_subcommands().front();
  return *a;
}

// The help of app itself (App::help shows the command named under it).
std::string help_of(const CLI::App& app) { return app.get_formatter()->make_help(&app, "", CLI::AppFormatMode::Normal); }

// What was wrong, in the words of this command line: "unknown option
// '--bogus'", "give at least one PATH", else CLI11's own message, which
// names the option.
std::string usage_error(const CLI::App& top, const CLI::App& at, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !at.remaining().empty()) {
    const std::string a = at.remaining().front();
    if (!a.empty() && a[0] == '-') return "unknown option '" + a + "'";
    return &at == &top ? "unknown command '" + a + "'" : "unexpected argument '" + a + "'";
  }
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    for (const CLI::Option* o : at.get_options()) {
      if (o->get_positional() && o->get_required() && o->count() == 0) {
        return (o->get_expected_max() > 1 ? "give at least one " : "give ") + o->get_name(true);
      }
    }
  }
  return e.what();
}

}  // namespace

namespace objcache::cachectl {

CLI::App* add_command(CLI::App& app, const char* name, const char* summary, const char* details) {
  CLI::App* sub = app.add_subcommand(name, summary);
  sub->footer(details);  // HelpFormatter prints it under the usage line
  return sub;
}

Result<Config> load_global_config(const GlobalOptions& g) {
  std::string path = g.config_path;
  if (path.empty()) {
    auto found = find_config_path();
    if (!found) {
      return make_error(Status::ConfigError,
                        "no configuration: pass --config FILE or set OBJCACHE_CONFIG (looked in "
                        "~/.config/objcache/config.toml and /etc/objcache/config.toml)");
    }
    path = *found;
  }
  auto cfg = load_config(path);
  if (cfg) configure_logging(cfg->log);  // [log] holds for cachectl too
  return cfg;
}

std::string shm_dir_override() {
  const char* d = std::getenv("OBJCACHE_SHM_DIR");
  return d == nullptr ? std::string() : std::string(d);
}

Result<std::unique_ptr<PageCache>> attach_cache(const Config& cfg) {
  PageCacheOptions po;
  po.create = false;
  po.shm_dir = shm_dir_override();
  return PageCache::open(cfg.cache, po);
}

Result<std::unique_ptr<Vfs>> open_vfs(const Config& cfg) {
  PageCacheOptions po;
  po.shm_dir = shm_dir_override();
  return Vfs::open(cfg, po);
}

}  // namespace objcache::cachectl

int main(int argc, char** argv) {
  CLI::App app{"", "cachectl"};
  // Set before the commands are added: each inherits them.
  app.formatter(std::make_shared<objcache::cachectl::HelpFormatter>());
  app.set_help_flag("-h,--help", "print this help and exit");
  app.footer(kDetails);
  app.require_subcommand(0, 1);  // none given is reported below, after --help had its chance

  objcache::cachectl::GlobalOptions g;
  app.add_option("--config", g.config_path, "the configuration file")->type_name("FILE");
  std::vector<Command> commands;
  for (auto add : kCommands) commands.push_back(add(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);  // the help of the command named last
    return 0;
  } catch (const CLI::ParseError& e) {
    const CLI::App& at = where(app);
    std::string name = &at == &app ? "cachectl" : "cachectl " + at.get_name();
    std::fprintf(stderr, "%s: %s\n\n%s", name.c_str(), usage_error(app, at, e).c_str(), help_of(at).c_str());
    return 2;
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run(g);
  }
  std::fprintf(stderr, "cachectl: name a COMMAND\n\n%s", help_of(app).c_str());
  return 2;
}
