// SPDX-License-Identifier: Apache-2.0
// Where the store's keys come from: the environment, an AWS profile, an AWS
// INI or OSS-connector JSON file, or nowhere (anonymous). Never logs or
// returns a secret in a message; files others can read are refused.
#pragma once

#include <string>

#include "objcache/result.h"
#include "store/sigv4.h"

namespace objcache::store {

struct ResolvedCredentials {
  bool anonymous = false;
  sigv4::Credentials keys;
  std::string origin;  // "env AWS_ACCESS_KEY_ID", "file /x/y.json", "profile default (/root/.aws/credentials)"
};

// spec is the config's `credentials` value: "env", "anonymous",
// "profile:NAME" or "file:PATH".
Result<ResolvedCredentials> resolve_credentials(const std::string& spec);

// "AKIA************MPLE": enough to recognize a key id, not to use it.
std::string mask_secret(const std::string& s);

}  // namespace objcache::store
