// SPDX-License-Identifier: Apache-2.0
// Manifests: JSON lines and CSV rows, errors with file and line, and the
// listing a delimited LIST would give.
#include "meta/manifest.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace objcache;
using namespace objcache::meta;

namespace {

std::string error_of(const std::string& text) {
  auto m = Manifest::parse(text, "/data/m.jsonl", "train/", 7);
  REQUIRE(!m.ok());
  CHECK(m.status() == Status::ConfigError);
  return m.error().message;
}

}  // namespace

TEST_CASE("JSON lines and CSV rows both read; mtime defaults to the file's; quotes leave the ETag") {
  auto m = Manifest::parse(
      "{\"key\": \"train/b/2.jpg\", \"size\": 20, \"etag\": \"\\\"e2\\\"\", \"mtime\": 1700000000}\n"
      "\n# a comment\n"
      "train/a.txt,5,e1\n"
      "train/b/1.jpg, 10 ,e3,1600000000\r\n",
      "/data/m.jsonl", "train/", 7);
  REQUIRE(m.ok());
  REQUIRE(m->size() == 3);
  CHECK(m->rows()[0].name == "a.txt");
  CHECK(m->rows()[0].mtime == 7);
  CHECK(m->rows()[1].name == "b/1.jpg");
  CHECK(m->rows()[1].size == 10);
  CHECK(m->rows()[1].mtime == 1600000000);
  CHECK(m->rows()[2].etag == "e2");

  std::vector<ObjectInfo> objects;
  std::vector<std::string> prefixes;
  m->list("", &objects, &prefixes);
  REQUIRE(objects.size() == 1);
  CHECK(objects[0].key == "train/a.txt");
  CHECK(objects[0].size == 5);
  CHECK(prefixes == std::vector<std::string>{"train/b/"});
  objects.clear();
  prefixes.clear();
  m->list("b/", &objects, &prefixes);
  REQUIRE(objects.size() == 2);
  CHECK(objects[0].key == "train/b/1.jpg");
  CHECK(objects[1].etag == "e2");
  CHECK(prefixes.empty());
  objects.clear();
  m->list("c/", &objects, &prefixes);
  CHECK(objects.empty());

  auto header = Manifest::parse("key,size,etag\ntrain/x,1,e\n", "f", "train/", 0);
  REQUIRE(header.ok());
  CHECK(header->size() == 1);
}

TEST_CASE("a bad row names the file and line and what is wrong") {
  CHECK(error_of("train/a,1,e\nnot a row\n") ==
        "/data/m.jsonl:2: expected key,size,etag[,mtime] (a key with a comma needs a JSON line)");
  CHECK(error_of("train/a,big,e\n") == "/data/m.jsonl:1: size \"big\" is not a whole number of bytes");
  CHECK(error_of("train/a,-1,e\n") == "/data/m.jsonl:1: size \"-1\" is not a whole number of bytes");
  CHECK(error_of("train/a,99999999999999999999999,e\n") ==
        "/data/m.jsonl:1: size \"99999999999999999999999\" is not a whole number of bytes");
  CHECK(error_of("{\"key\": \"train/a\", \"size\": 1}\n") == "/data/m.jsonl:1: \"etag\" must be a string");
  CHECK(error_of("{\"key\": \"train/a\", \"size\": -3, \"etag\": \"e\"}\n") ==
        "/data/m.jsonl:1: \"size\" must be a whole number of bytes");
  CHECK(error_of("{\"key\": \"train/a\", \"size\": 1, \"etag\": \"e\", \"colour\": 1}\n") ==
        "/data/m.jsonl:1: unknown field \"colour\"");
  CHECK(error_of("{\"key\": \"train/a\"\n") == "/data/m.jsonl:1: not a JSON object");
  CHECK(error_of("other/a,1,e\n") == "/data/m.jsonl:1: key \"other/a\" is not under the mount's prefix \"train/\"");
  CHECK(error_of("train/,1,e\n") == "/data/m.jsonl:1: key \"train/\" is not under the mount's prefix \"train/\"");
  CHECK(error_of("train/d/,1,e\n") == "/data/m.jsonl:1: key \"train/d/\" names no file (an empty path part)");
  CHECK(error_of("train/a,1,\n") == "/data/m.jsonl:1: etag of \"train/a\" must be 1 to 200 characters");
  CHECK(error_of("train/a,1,e\ntrain/b,1,e\ntrain/a,2,f\n") == "/data/m.jsonl: key \"train/a\" is given twice");
}

TEST_CASE("a missing manifest file is NotFound with its path") {
  auto m = Manifest::load("/nonexistent/objcache-manifest.jsonl", "");
  REQUIRE(!m.ok());
  CHECK(m.status() == Status::NotFound);
  CHECK(m.error().message == "manifest /nonexistent/objcache-manifest.jsonl: cannot read: No such file or directory");
}
