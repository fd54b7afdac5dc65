// SPDX-License-Identifier: Apache-2.0
// cachectl's help layout (see help_formatter.h).
#include "help_formatter.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>
#include <utility>
#include <vector>

namespace objcache::cachectl {
namespace {

constexpr std::size_t kWidth = 79;
constexpr std::size_t kCommandColumn = 12;  // where a command's summary starts
constexpr std::size_t kOptionColumnMax = 24;

bool listed(const CLI::App& app, const CLI::Option* o) {
  return !o->get_group().empty() && o != app.get_help_ptr() && o != app.get_help_all_ptr();
}

// "--watch SECONDS", "-h, --help", "PATH...": an option as a user types it.
std::string spelled(const CLI::Option& o, bool all_names) {
  if (o.get_positional()) {
    std::string s = o.get_name(true);
    return o.get_expected_max() >= CLI::detail::expected_max_vector_size ? s + "..." : s;
  }
  std::string s = o.get_name(false, all_names);
  for (std::size_t at = s.find(','); at != std::string::npos; at = s.find(',', at + 2)) s.insert(at + 1, " ");
  std::string value = o.get_type_name();  // "" for a flag
  return value.empty() ? s : s + " " + value;
}

// The options and arguments of app as a synopsis: "[--json | --prometheus]
// [--watch SECONDS] PATH...".
std::string synopsis(const CLI::App& app) {
  std::vector<const CLI::Option*> opts = app.get_options([&](const CLI::Option* o) { return listed(app, o); });
  std::vector<const CLI::Option*> done;
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : " ") + part; };
  for (const CLI::Option* o : opts) {
    if (o->get_positional() || std::find(done.begin(), done.end(), o) != done.end()) continue;
    std::string choice;
    const auto excluded = o->get_excludes();
    for (const CLI::Option* x : opts) {
      if (x != o && std::find(excluded.begin(), excluded.end(), x) == excluded.end()) continue;
      choice += (choice.empty() ? "" : " | ") + spelled(*x, false);
      done.push_back(x);
    }
    add(o->get_required() ? choice : "[" + choice + "]");
  }
  for (const CLI::Option* o : opts) {
    if (o->get_positional()) add(o->get_required() ? spelled(*o, false) : "[" + spelled(*o, false) + "]");
  }
  return out;
}

// Rows of "  left  text", text wrapped at kWidth from one column; a left
// part too wide for it stands on its own line.
std::string table(const std::vector<std::pair<std::string, std::string>>& rows, std::size_t column_max) {
  std::size_t widest = 0;
  for (const auto& r : rows) widest = std::max(widest, r.first.size());
  const std::size_t column = std::min(2 + widest + 2, column_max);
  std::string out;
  for (const auto& [left, text] : rows) {
    std::string line = "  " + left;
    if (line.size() + 2 > column && !text.empty()) {
      out += line + "\n";
      line.clear();
    }
    std::istringstream words(text);
    std::string w;
    bool first = true;
    while (words >> w) {
      if (!first && line.size() + 1 + w.size() > kWidth) {
        out += line + "\n";
        line.clear();
        first = true;
      }
      if (first) {
        line.resize(column, ' ');
        line += w;
      } else {
        line += " " + w;
      }
      first = false;
    }
    out += line + "\n";
  }
  return out;
}

std::string line_of(const CLI::App& app) {
  std::string s = app.get_parent() != nullptr ? line_of(*app.get_parent()) + " " : "";
  s += app.get_name();
  std::string syn = synopsis(app);
  return syn.empty() ? s : s + " " + syn;
}

std::vector<const CLI::App*> commands_of(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* s) { return !s->get_disabled() && !s->get_name().empty(); });
}

}  // namespace

std::string usage_line(const CLI::App& app) {
  return line_of(app) + (commands_of(app).empty() ? "" : " COMMAND [ARGS]");
}

std::string HelpFormatter::make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const {
  std::string out = "usage: " + usage_line(*app) + "\n";
  std::string details = app->get_footer();
  if (!details.empty()) out += "\n" + details + (details.back() == '\n' ? "" : "\n");

  std::vector<std::pair<std::string, std::string>> rows;
  for (const CLI::App* c : commands_of(*app)) {
    std::string syn = synopsis(*c);
    rows.emplace_back(syn.empty() ? c->get_name() : c->get_name() + " " + syn, c->get_description());
  }
  if (!rows.empty()) out += "\nCommands:\n" + table(rows, kCommandColumn);

  rows.clear();
  for (const CLI::Option* o : app->get_options([&](const CLI::Option* o) { return o->get_positional(); })) {
    if (!o->get_description().empty()) rows.emplace_back(spelled(*o, true), o->get_description());
  }
  if (!rows.empty()) out += "\nArguments:\n" + table(rows, kOptionColumnMax);

  rows.clear();
  for (const CLI::Option* o : app->get_options([&](const CLI::Option* o) { return !o->get_positional(); })) {
    if (listed(*app, o)) rows.emplace_back(spelled(*o, true), o->get_description());
  }
  if (const CLI::Option* h = app->get_help_ptr(); h != nullptr) rows.emplace_back(spelled(*h, true), h->get_description());
  if (!rows.empty()) out += "\nOptions:\n" + table(rows, kOptionColumnMax);
  return out;
}

}  // namespace objcache::cachectl
