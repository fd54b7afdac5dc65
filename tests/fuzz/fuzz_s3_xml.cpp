// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: S3's reply bodies (errors, listings, multipart) and its
// date formats, as a hostile server could send them. A listing that parses
// names only keys that are non-empty strings; nothing crashes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/s3_xml.h"

using namespace objcache::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)s3xml::parse_error(body);
  if (auto page = s3xml::parse_list(body)) {
    for (const auto& o : page->objects)
      if (o.key.size() > body.size()) std::abort();  // a key comes from the body
  }
  (void)s3xml::parse_upload_id(body);
  (void)s3xml::parse_result_etag(body, "CompleteMultipartUploadResult");
  (void)s3xml::parse_result_etag(body, "CopyObjectResult");
  (void)s3xml::parse_iso8601(body);
  (void)s3xml::parse_http_date(body);
  (void)s3xml::unquote(body);
  return 0;
}
