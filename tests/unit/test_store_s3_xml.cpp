// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include "store/s3_xml.h"

using namespace objcache;
using namespace objcache::store;

TEST_CASE("S3 error bodies give their code and message") {
  auto e = s3xml::parse_error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Key>a b</Key></Error>");
  CHECK(e.code == "NoSuchKey");
  CHECK(e.message == "The specified key does not exist.");
  CHECK(s3xml::parse_error("").code.empty());
  CHECK(s3xml::parse_error("not xml <").code.empty());
}

TEST_CASE("ListObjectsV2 pages parse keys, prefixes and the continuation token") {
  auto page = s3xml::parse_list(
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated><NextContinuationToken>tok==</NextContinuationToken>"
      "<Contents><Key>p/a &amp; b.jpg</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
      "<ETag>&quot;abc&quot;</ETag><Size>123</Size></Contents>"
      "<Contents><Key>p/\xc3\xa9t\xc3\xa9</Key><LastModified>2024-01-02T03:04:06.000Z</LastModified>"
      "<ETag>\"def\"</ETag><Size>5000000000</Size></Contents>"
      "<CommonPrefixes><Prefix>p/dir/</Prefix></CommonPrefixes></ListBucketResult>");
  REQUIRE(page.ok());
  REQUIRE(page->objects.size() == 2);
  CHECK(page->objects[0].key == "p/a & b.jpg");
  CHECK(page->objects[0].etag == "abc");
  CHECK(page->objects[0].size == 123);
  CHECK(page->objects[0].mtime == 1704164645);
  CHECK(page->objects[1].key == "p/\xc3\xa9t\xc3\xa9");
  CHECK(page->objects[1].size == 5000000000ull);
  CHECK(page->common_prefixes == std::vector<std::string>{"p/dir/"});
  CHECK(page->truncated);
  CHECK(page->next_continuation_token == "tok==");

  CHECK_FALSE(s3xml::parse_list("<Other/>").ok());
  CHECK_FALSE(s3xml::parse_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").ok());
}

TEST_CASE("multipart and copy replies") {
  auto id = s3xml::parse_upload_id(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>xyz</UploadId>"
      "</InitiateMultipartUploadResult>");
  REQUIRE(id.ok());
  CHECK(*id == "xyz");
  auto etag = s3xml::parse_result_etag(
      "<CompleteMultipartUploadResult><ETag>\"e-3\"</ETag></CompleteMultipartUploadResult>",
      "CompleteMultipartUploadResult");
  REQUIRE(etag.ok());
  CHECK(*etag == "e-3");
  // S3 can answer 200 and still report an error in the body.
  auto err = s3xml::parse_result_etag("<Error><Code>InternalError</Code><Message>x</Message></Error>",
                                      "CompleteMultipartUploadResult");
  CHECK_FALSE(err.ok());
  std::string xml = s3xml::build_complete({{1, "a"}, {2, "b"}});
  CHECK(xml == "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>"
               "<Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>");
}

TEST_CASE("dates") {
  CHECK(s3xml::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480);
  CHECK(s3xml::parse_iso8601("2015-10-21T07:28:00.000Z") == 1445412480);
  CHECK(s3xml::parse_http_date("garbage") == -1);
  CHECK(s3xml::unquote("\"abc\"") == "abc");
  CHECK(s3xml::unquote("abc") == "abc");
}

TEST_CASE("Content-Range of a ranged GET") {
  auto r = s3xml::parse_content_range("bytes 1048576-2097151/5000000");
  REQUIRE(r.has_value());
  CHECK(r->first == 1048576);
  CHECK(r->last == 2097151);
  CHECK(r->total == 5000000);
  CHECK(s3xml::parse_content_range("bytes 0-0/1").has_value());
  // sscanf's %llu took these: a sign wraps, blanks are skipped.
  CHECK_FALSE(s3xml::parse_content_range("bytes -1-5/10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes +1-5/10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes  1-5/10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes 1- 5/10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes 1-5/10x").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes 5-1/10").has_value());    // last before first
  CHECK_FALSE(s3xml::parse_content_range("bytes 0-10/10").has_value());   // past the end
  CHECK_FALSE(s3xml::parse_content_range("bytes 0-5/*").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes */10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("items 0-5/10").has_value());
  CHECK_FALSE(s3xml::parse_content_range("bytes 0-5/99999999999999999999999").has_value());  // overflow
  CHECK_FALSE(s3xml::parse_content_range("").has_value());
}
