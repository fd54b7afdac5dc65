// SPDX-License-Identifier: Apache-2.0
#include "store/credentials.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace objcache::store {
namespace {

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string home_dir() {
  std::string h = getenv_str("HOME");
  return h.empty() ? "/root" : h;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A secret file readable by anyone but its owner is a leak waiting to be
// used: refuse it, as ssh and s3fs do.
Result<std::string> read_private_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(errno == ENOENT ? Status::NotFound : Status::AccessDenied,
                      "credentials file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Status::InvalidArgument, "credentials file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Status::AccessDenied,
                      "credentials file " + path + " is accessible by group or others (mode " +
                          mode + "); run: chmod 600 " + path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Status::AccessDenied, "credentials file " + path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Finds [section] in AWS INI text. Returns false when the section is absent.
bool ini_section(const std::string& text, const std::string& section,
                 sigv4::Credentials& out, bool& found_keys) {
  std::istringstream in(text);
  std::string line;
  bool inside = false;
  bool found = false;
  found_keys = false;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      inside = trim(t.substr(1, t.size() - 2)) == section;
      found = found || inside;
      continue;
    }
    if (!inside) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string k = trim(t.substr(0, eq));
    std::string v = trim(t.substr(eq + 1));
    if (k == "aws_access_key_id") out.access_key_id = v;
    else if (k == "aws_secret_access_key") out.secret_access_key = v;
    else if (k == "aws_session_token") out.session_token = v;
  }
  found_keys = !out.access_key_id.empty() && !out.secret_access_key.empty();
  return found;
}

Result<ResolvedCredentials> from_profile(const std::string& name) {
  std::string cred_file = getenv_str("AWS_SHARED_CREDENTIALS_FILE");
  if (cred_file.empty()) cred_file = home_dir() + "/.aws/credentials";
  std::string config_file = getenv_str("AWS_CONFIG_FILE");
  if (config_file.empty()) config_file = home_dir() + "/.aws/config";

  for (const auto& [file, section] :
       {std::pair{cred_file, name},
        std::pair{config_file, name == "default" ? name : "profile " + name}}) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) continue;
    auto text = read_private_file(file);
    if (!text) return text.error();
    ResolvedCredentials rc;
    bool have_keys = false;
    if (ini_section(*text, section, rc.keys, have_keys) && have_keys) {
      rc.origin = "profile " + name + " (" + file + ")";
      return rc;
    }
  }
  return make_error(Status::NotFound, "AWS profile '" + name + "' with aws_access_key_id and " +
                                          "aws_secret_access_key not found in " + cred_file +
                                          " or " + config_file);
}

Result<ResolvedCredentials> from_file(const std::string& path) {
  auto text = read_private_file(path);
  if (!text) return text.error();
  ResolvedCredentials rc;
  rc.origin = "file " + path;
  std::string t = trim(*text);
  if (!t.empty() && t.front() == '{') {
    // The OSS connector's JSON: {"AccessKeyId": ..., "AccessKeySecret": ...,
    // "SecurityToken": ...}; the AWS spelling SecretAccessKey/SessionToken too.
    nlohmann::json j = nlohmann::json::parse(t, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return make_error(Status::InvalidArgument, "credentials file " + path + ": not valid JSON");
    }
    auto str = [&](std::initializer_list<const char*> names) -> std::string {
      for (const char* n : names) {
        auto it = j.find(n);
        if (it != j.end() && it->is_string()) return it->get<std::string>();
      }
      return {};
    };
    rc.keys.access_key_id = str({"AccessKeyId"});
    rc.keys.secret_access_key = str({"AccessKeySecret", "SecretAccessKey"});
    rc.keys.session_token = str({"SecurityToken", "SessionToken"});
    if (rc.keys.access_key_id.empty() || rc.keys.secret_access_key.empty()) {
      return make_error(Status::InvalidArgument,
                        "credentials file " + path +
                            ": JSON needs string fields AccessKeyId and AccessKeySecret");
    }
    return rc;
  }
  std::string profile = getenv_str("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  bool have_keys = false;
  if (!ini_section(*text, profile, rc.keys, have_keys) || !have_keys) {
    return make_error(Status::InvalidArgument,
                      "credentials file " + path + ": no [" + profile +
                          "] section with aws_access_key_id and aws_secret_access_key");
  }
  return rc;
}

Result<ResolvedCredentials> from_env() {
  ResolvedCredentials rc;
  rc.keys.access_key_id = getenv_str("AWS_ACCESS_KEY_ID");
  rc.keys.secret_access_key = getenv_str("AWS_SECRET_ACCESS_KEY");
  if (!rc.keys.access_key_id.empty() && !rc.keys.secret_access_key.empty()) {
    rc.keys.session_token = getenv_str("AWS_SESSION_TOKEN");
    rc.origin = "env AWS_ACCESS_KEY_ID";
    return rc;
  }
  rc.keys.access_key_id = getenv_str("OSS_ACCESS_KEY_ID");
  rc.keys.secret_access_key = getenv_str("OSS_ACCESS_KEY_SECRET");
  if (!rc.keys.access_key_id.empty() && !rc.keys.secret_access_key.empty()) {
    rc.keys.session_token = getenv_str("OSS_SESSION_TOKEN");
    rc.origin = "env OSS_ACCESS_KEY_ID";
    return rc;
  }
  // The SDKs' next step in the chain: a named profile.
  std::string profile = getenv_str("AWS_PROFILE");
  if (!profile.empty()) return from_profile(profile);
  return make_error(Status::AccessDenied,
                    "credentials = \"env\" but neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                    "nor OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET nor AWS_PROFILE is set");
}

}  // namespace

Result<ResolvedCredentials> resolve_credentials(const std::string& spec) {
  try {
    if (spec == "env") return from_env();
    if (spec == "anonymous") {
      ResolvedCredentials rc;
      rc.anonymous = true;
      rc.origin = "anonymous";
      return rc;
    }
    if (spec.rfind("profile:", 0) == 0) return from_profile(spec.substr(8));
    if (spec.rfind("file:", 0) == 0) {
      std::string path = spec.substr(5);
      if (path.rfind("~/", 0) == 0) path = home_dir() + path.substr(1);
      return from_file(path);
    }
    return make_error(Status::InvalidArgument,
                      "credentials: expected \"env\", \"anonymous\", \"profile:NAME\" or "
                      "\"file:PATH\", got \"" + spec + "\"");
  } catch (const std::exception& e) {
    return make_error(Status::IoError, std::string("credentials: ") + e.what());
  }
}

std::string mask_secret(const std::string& s) {
  if (s.size() <= 8) return std::string(s.size(), '*');
  return s.substr(0, 4) + std::string(s.size() - 8, '*') + s.substr(s.size() - 4);
}

}  // namespace objcache::store
