// SPDX-License-Identifier: Apache-2.0
// S3's wire formats: the XML bodies of replies and requests, and its two
// date formats. The only file that includes pugixml is s3_xml.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "objcache/object_store.h"
#include "objcache/result.h"

namespace objcache::store::s3xml {

struct S3Error {
  std::string code;     // "NoSuchKey"; "" when the body is not an S3 error
  std::string message;  // the server's words
};

// <Error><Code>..</Code><Message>..</Message></Error>; empty fields if absent.
S3Error parse_error(std::string_view body);
// <ListBucketResult> of ListObjectsV2.
Result<ListPage> parse_list(std::string_view body);
// <InitiateMultipartUploadResult><UploadId>.
Result<std::string> parse_upload_id(std::string_view body);
// The ETag of <CompleteMultipartUploadResult> or <CopyObjectResult>. Both can
// arrive with status 200 and an <Error> body, which is returned as an error.
Result<std::string> parse_result_etag(std::string_view body, std::string_view root);
// <CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...
std::string build_complete(const std::vector<CompletedPart>& parts);

// "2009-10-12T17:50:30.000Z" -> seconds since the epoch; -1 if malformed.
std::int64_t parse_iso8601(std::string_view s);
// "Wed, 21 Oct 2015 07:28:00 GMT" -> seconds since the epoch; -1 if malformed.
std::int64_t parse_http_date(std::string_view s);
// A ranged GET's Content-Range, "bytes FIRST-LAST/TOTAL" (decimal digits
// only, no sign or blank inside): its numbers when FIRST <= LAST < TOTAL;
// nullopt for anything else ("*" totals, "bytes */N", overflow, junk after).
struct ContentRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t total = 0;
};
std::optional<ContentRange> parse_content_range(std::string_view s);
// Removes surrounding quotes from an ETag.
std::string unquote(std::string_view etag);

}  // namespace objcache::store::s3xml
