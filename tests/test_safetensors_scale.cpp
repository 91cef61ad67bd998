// safetensors headers with very many tensors parse and write in O(n log n): 300k tensors used to take over
// two minutes (ordered_json searched every earlier key per insert). Also the tie order of empty tensors.
#include <string>

#include <gtest/gtest.h>

#include "loom/loom.h"

using namespace loom;

namespace {

// A file of n one-element f32 tensors "t0".."t{n-1}" holding 0..n-1, built straight as bytes.
std::string many_tensors_file(int64_t n) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::string data;
  for (int64_t i = 0; i < n; ++i) {
    header += ",\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
    const float v = float(i);
    data.append(reinterpret_cast<const char*>(&v), 4);
  }
  header += "}";
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char(uint64_t(header.size()) >> (8 * i));
  return len + header + data;
}

}  // namespace

TEST(SafetensorsScale, ThreeHundredThousandTensorsParseAndWrite) {
  const int64_t n = 300000;
  io::SafetensorsFile f = io::parse_safetensors(many_tensors_file(n), "big.safetensors");
  ASSERT_EQ(int64_t(f.tensors.size()), n);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  for (int64_t i : {int64_t(0), int64_t(12345), n - 1}) {
    EXPECT_EQ(f.tensors[size_t(i)].first, "t" + std::to_string(i));
    EXPECT_EQ(f.tensors[size_t(i)].second.item<float>(), float(i));
  }
  // The writer builds the same header without the quadratic insert, and reads back identically.
  io::SafetensorsFile again = io::parse_safetensors(io::safetensors_bytes(f.tensors, f.metadata), "again");
  ASSERT_EQ(again.tensors.size(), f.tensors.size());
  EXPECT_EQ(again.tensors.back().first, "t" + std::to_string(n - 1));
  EXPECT_EQ(again.tensors.back().second.item<float>(), float(n - 1));
}

TEST(SafetensorsScale, EmptyTensorsKeepHeaderOrderAndDuplicatesAreRefused) {
  // Three empty tensors share offset 0: their order is the header's (not alphabetical).
  const std::string header = "{\"zz\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                             "\"aa\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[0,0]},"
                             "\"mm\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}";
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char(uint64_t(header.size()) >> (8 * i));
  io::SafetensorsFile f = io::parse_safetensors(len + header, "empty");
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors[0].first, "zz");
  EXPECT_EQ(f.tensors[1].first, "aa");
  EXPECT_EQ(f.tensors[2].first, "mm");
  EXPECT_EQ(f.tensors[1].second.shape(), (Shape{2, 0}));

  const std::string dup = "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                          "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}";
  for (int i = 0; i < 8; ++i) len[size_t(i)] = char(uint64_t(dup.size()) >> (8 * i));
  try {
    io::parse_safetensors(len + dup, "dup.safetensors");
    FAIL() << "a duplicate name was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("names 'a' twice"), std::string::npos) << e.what();
  }
}
