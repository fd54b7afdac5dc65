// SPDX-License-Identifier: Apache-2.0
#include "store/s3_xml.h"

#include <charconv>
#include <ctime>
#include <pugixml.hpp>

namespace objcache::store::s3xml {
namespace {

bool load(pugi::xml_document& doc, std::string_view body) {
  return doc.load_buffer(body.data(), body.size(), pugi::parse_default, pugi::encoding_utf8);
}

std::string text(const pugi::xml_node& n, const char* child) {
  return n.child(child).text().as_string();
}

Error malformed(std::string_view what, std::string_view body) {
  std::string head(body.substr(0, 200));
  return make_error(Status::IoError, std::string("malformed ") + std::string(what) +
                                         " reply from the server: " + head);
}

}  // namespace

S3Error parse_error(std::string_view body) {
  S3Error e;
  pugi::xml_document doc;
  if (body.empty() || !load(doc, body)) return e;
  pugi::xml_node err = doc.child("Error");
  if (!err) return e;
  e.code = text(err, "Code");
  e.message = text(err, "Message");
  return e;
}

Result<ListPage> parse_list(std::string_view body) {
  pugi::xml_document doc;
  if (!load(doc, body)) return malformed("ListObjectsV2", body);
  pugi::xml_node root = doc.child("ListBucketResult");
  if (!root) return malformed("ListObjectsV2", body);
  ListPage page;
  for (pugi::xml_node c : root.children("Contents")) {
    ObjectInfo info;
    info.key = text(c, "Key");
    info.size = c.child("Size").text().as_ullong();
    info.etag = unquote(text(c, "ETag"));
    info.mtime = parse_iso8601(text(c, "LastModified"));
    page.objects.push_back(std::move(info));
  }
  for (pugi::xml_node p : root.children("CommonPrefixes")) {
    page.common_prefixes.push_back(text(p, "Prefix"));
  }
  page.truncated = std::string_view(root.child("IsTruncated").text().as_string()) == "true";
  page.next_continuation_token = text(root, "NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return malformed("ListObjectsV2 (truncated without a continuation token)", body);
  }
  return page;
}

Result<std::string> parse_upload_id(std::string_view body) {
  pugi::xml_document doc;
  if (!load(doc, body)) return malformed("CreateMultipartUpload", body);
  std::string id = text(doc.child("InitiateMultipartUploadResult"), "UploadId");
  if (id.empty()) return malformed("CreateMultipartUpload", body);
  return id;
}

Result<std::string> parse_result_etag(std::string_view body, std::string_view root_name) {
  pugi::xml_document doc;
  if (!load(doc, body)) return malformed(root_name, body);
  if (pugi::xml_node err = doc.child("Error")) {
    return make_error(Status::IoError, text(err, "Code") + ": " + text(err, "Message"));
  }
  pugi::xml_node root = doc.child(std::string(root_name).c_str());
  if (!root) return malformed(root_name, body);
  return unquote(text(root, "ETag"));
}

std::string build_complete(const std::vector<CompletedPart>& parts) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  for (const CompletedPart& p : parts) {
    pugi::xml_node part = root.append_child("Part");
    part.append_child("PartNumber").text().set(p.number);
    part.append_child("ETag").text().set(("\"" + p.etag + "\"").c_str());
  }
  struct Writer : pugi::xml_writer {
    std::string out;
    void write(const void* data, size_t size) override {
      out.append(static_cast<const char*>(data), size);
    }
  } w;
  doc.save(w, "", pugi::format_raw | pugi::format_no_declaration);
  return w.out;
}

std::int64_t parse_iso8601(std::string_view s) {
  std::tm tm{};
  std::string str(s);
  const char* end = strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return -1;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::int64_t parse_http_date(std::string_view s) {
  std::tm tm{};
  std::string str(s);
  const char* end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) return -1;
  return static_cast<std::int64_t>(timegm(&tm));
}

namespace {

// Digits up to (not including) stop, as one number; false on no digits,
// overflow, or anything else before stop.
bool take_number(std::string_view& s, char stop, std::uint64_t* out) {
  const std::size_t end = stop == '\0' ? s.size() : s.find(stop);
  if (end == 0 || end == std::string_view::npos) return false;
  const char* first = s.data();
  const char* last = s.data() + end;
  if (*first < '0' || *first > '9') return false;  // from_chars takes no sign, but say so
  auto [ptr, ec] = std::from_chars(first, last, *out);
  if (ec != std::errc() || ptr != last) return false;
  s.remove_prefix(stop == '\0' ? end : end + 1);
  return true;
}

}  // namespace

std::optional<ContentRange> parse_content_range(std::string_view s) {
  constexpr std::string_view kUnit = "bytes ";
  if (s.substr(0, kUnit.size()) != kUnit) return std::nullopt;
  s.remove_prefix(kUnit.size());
  ContentRange r;
  if (!take_number(s, '-', &r.first) || !take_number(s, '/', &r.last) || !take_number(s, '\0', &r.total))
    return std::nullopt;
  if (r.first > r.last || r.last >= r.total) return std::nullopt;
  return r;
}

std::string unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

}  // namespace objcache::store::s3xml
