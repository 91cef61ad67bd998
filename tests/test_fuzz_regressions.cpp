// Regression tests for what the libFuzzer targets (fuzz/) found, one per finding; the reproducers themselves
// are in fuzz/regressions/TARGET/ and are replayed by every fuzz run.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stb/stb_image_write.h>

#include "loom/data/image_folder.h"
#include "loom/data/jpeg_check.h"
#include "loom/loom.h"
#include "loom/models/gpt_hf.h"
#include "loom/models/language_model.h"
#include "loom/models/lstm_lm.h"
#include "support/scratch.h"

using namespace loom;

namespace {

std::string read_reproducer(const std::string& target, const std::string& name) {
  std::ifstream f(std::string(LOOM_TEST_DIR) + "/../fuzz/regressions/" + target + "/" + name, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing reproducer " << target << "/" << name;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Runs `f`, expecting a loom::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

// Five dims of 2^31 multiply to 0 modulo 2^128: the size check wrapped around, accepted an empty data section
// and went on to make a tensor of 2^155 elements.
TEST(FuzzRegressions, IdxDimsWhoseProductWrapsAreRefused) {
  const auto path = test::scratch("wrap-idx3-ubyte");
  test::write_file(path, read_reproducer("fuzz_idx", "dims_wrap_to_zero"));
  expect_error([&] { data::read_idx(path.string()); },
               {path.string(), "declares shape [2147483648, 2147483648", "more data bytes", "holds 0 data bytes"});
}

// A finite double outside float's range (1e39) was converted to f32: undefined behaviour (UBSan's
// float-cast-overflow), and in practice an inf feature that then trained to NaN.
TEST(FuzzRegressions, CsvValuesOutsideFloatRangeAreRefused) {
  const auto a = test::scratch("overflow_feature.csv"), b = test::scratch("overflow_target.csv");
  test::write_file(a, read_reproducer("fuzz_csv", "float_overflow_feature").substr(1));  // byte 0: the options
  test::write_file(b, read_reproducer("fuzz_csv", "float_overflow_target").substr(1));
  expect_error([&] { data::read_csv(a.string(), {.target = "y"}); },
               {a.string() + ":2", "column 'a' value '1e39'", "outside the float32 range"});
  expect_error([&] { data::read_csv(b.string(), {.target = "y"}); },
               {b.string() + ":2", "target column 'y' value '-4e38'", "outside the float32 range"});
  // The largest float itself is accepted.
  const auto c = test::scratch("max_float.csv");
  test::write_file(c, "a,y\n3.4028234e38,1\n");
  EXPECT_EQ(data::read_csv(c.string(), {.target = "y"}).features.item<float>(), 3.4028234e38f);
}

// A dim of 0 among huge ones makes an empty tensor, which has no memory: copying its 0 bytes passed a null
// pointer to memcpy (undefined behaviour, reported by UBSan).
TEST(FuzzRegressions, IdxEmptyTensorWithHugeDimsReadsAsEmpty) {
  const auto path = test::scratch("empty-idx3-ubyte");
  test::write_file(path, read_reproducer("fuzz_idx", "empty_tensor_memcpy"));
  Tensor t = data::read_idx(path.string());
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.shape(), (Shape{2147483648, 2147483648, 2155872256, 0, 2147483648}));
}

// stb_image 2.27 writes past a Huffman table's 257-byte size array when the 16 code counts add up to more
// than 256 (here: a JPEG whose DHT declares far more codes). decode_image must refuse the file first.
TEST(FuzzRegressions, JpegHuffmanTableWithTooManyCodesIsRefused) {
  const std::string jpeg = read_reproducer("fuzz_image", "jpeg_dht_over_256_codes").substr(1);  // byte 0: channels
  expect_error([&] { data::decode_image(jpeg, "bad.jpg", 3); }, {"bad.jpg", "JPEG Huffman table at byte", "codes"});
  // The same overflow behind fill bytes: stb accepts FF FF ... FF D8 as the start of a JPEG.
  const std::string filled = read_reproducer("fuzz_image", "jpeg_fill_bytes_before_soi_dht_over_256").substr(1);
  expect_error([&] { data::decode_image(filled, "filled.jpg", 3); }, {"filled.jpg", "JPEG Huffman table at byte", "codes"});
  // 690 bytes declaring 1024x51976: refused before stb decodes 53M pixels of zeros.
  const std::string tall = read_reproducer("fuzz_image", "jpeg_690_bytes_declaring_53m_pixels").substr(1);
  expect_error([&] { data::decode_image(tall, "tall.jpg", 3); }, {"tall.jpg", "1024x51976", "truncated or corrupt"});
  // A hand-made table: 16 counts of 17 (272 codes) in an otherwise minimal JPEG.
  std::string dht = "\xFF\xD8\xFF\xC4";
  dht += std::string{char(0), char(2 + 17 + 272)} + char(0x00) + std::string(16, char(17)) + std::string(272, 'a');
  expect_error([&] { data::check_jpeg_tables(dht, "made.jpg"); }, {"made.jpg", "declares 272 codes (at most 256)"});
  // Well-formed JPEGs (stb's own encoder, gray and colour) still decode.
  for (int c : {1, 3}) {
    std::vector<unsigned char> px(size_t(16 * 12 * c));
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 7);
    std::string out;
    stbi_write_jpg_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), size_t(n)); },
                           &out, 16, 12, c, px.data(), 90);
    EXPECT_NO_THROW(data::check_jpeg_tables(out, "ok.jpg"));
    Tensor img = data::decode_image(out, "ok.jpg", 3);  // stb's encoder writes YCbCr even for gray input
    EXPECT_EQ(img.shape(), (Shape{12, 16, 3}));
  }
}

// A 17-byte run-length TGA header declaring 5904x4116 (under the pixel limit): stb decoded all 24M pixels from
// no data (a 10 s time-out under the sanitizers). The data after the header bounds the pixels first.
TEST(FuzzRegressions, TgaDeclaringMorePixelsThanItsDataCanHoldIsRefused) {
  const std::string tga = read_reproducer("fuzz_image", "tga_rle_header_only_24m_pixels").substr(1);  // byte 0: channels
  expect_error([&] { data::decode_image(tga, "bad.tga", 3); },
               {"bad.tga", "TGA header declares 5904x4116", "0 bytes of image data", "truncated or corrupt"});
  // A well-formed uncompressed TGA (2x2 grey) still decodes.
  std::string ok = std::string("\x00\x00\x03", 3) + std::string(9, '\0') + std::string("\x02\x00\x02\x00\x08\x00", 6) +
                   std::string("\x10\x20\x30\x40", 4);
  EXPECT_EQ(data::decode_image(ok, "ok.tga", 1).shape(), (Shape{2, 2, 1}));
}

// fuzz_image: a PNG whose first IDAT chunk is empty made stb copy zero bytes into its not yet allocated buffer,
// memcpy(NULL, src, 0) (UBSan nonnull; off for stb in the fuzz build, fuzz/README.md). The reproducer (whose next
// chunk length runs past the end) is a clear error, and a valid PNG with an empty first IDAT chunk (legal PNG)
// decodes to the same pixels as without it.
TEST(FuzzRegressions, PngWithAnEmptyIdatChunk) {
  const std::string bad = read_reproducer("fuzz_image", "png_zero_length_idat_null_memcpy").substr(1);  // byte 0: channels
  expect_error([&] { data::decode_image(bad, "bad.png", 3); }, {"bad.png"});
  std::vector<unsigned char> px(size_t(5 * 3 * 3));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 11 + 3);
  std::string png;
  stbi_write_png_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), size_t(n)); },
                         &png, 5, 3, 3, px.data(), 5 * 3);
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  auto crc32 = [](std::string_view b) {  // PNG's CRC-32 (ISO 3309), bit by bit: 4 bytes here
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char ch : b) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
  };
  const uint32_t crc = crc32("IDAT");
  std::string empty_idat = std::string(4, '\0') + "IDAT";
  for (int s = 24; s >= 0; s -= 8) empty_idat += char((crc >> s) & 0xFF);
  const std::string with_empty = png.substr(0, idat - 4) + empty_idat + png.substr(idat - 4);
  Tensor a = data::decode_image(png, "plain.png", 3), b = data::decode_image(with_empty, "empty_idat.png", 3);
  ASSERT_EQ(a.shape(), (Shape{3, 5, 3}));
  ASSERT_EQ(b.shape(), a.shape());
  EXPECT_TRUE(equal(a, b));
  const std::vector<double> got = a.tolist();
  EXPECT_EQ(got, std::vector<double>(px.begin(), px.end()));
}

// fuzz_image (10-minute run 8): a 144-byte PNG whose second chunk claims ~1.8 GB made stb 2.27 grow its IDAT buffer
// to 2 GB before reading (libFuzzer out-of-memory). check_png_chunks refuses a chunk longer than what is left of
// the file, naming the chunk and its offset, before stb sees it; a valid PNG with trailing bytes after IEND and
// one whose last chunk is cut short are checked too.
TEST(FuzzRegressions, PngChunkLongerThanTheFileIsRefused) {
  const std::string bad = read_reproducer("fuzz_image", "png_idat_length_past_end_2gb_alloc").substr(1);  // byte 0: channels
  expect_error([&] { data::decode_image(bad, "huge_chunk.png", 3); },
               {"huge_chunk.png", "PNG chunk", "at byte", "truncated or corrupt"});
  std::vector<unsigned char> px(size_t(4 * 2 * 3), 77);
  std::string png;
  stbi_write_png_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), size_t(n)); },
                         &png, 4, 2, 3, px.data(), 4 * 3);
  Tensor ok = data::decode_image(png + "trailing bytes after IEND", "trailing.png", 3);
  EXPECT_EQ(ok.shape(), (Shape{2, 4, 3}));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  expect_error([&] { data::decode_image(png.substr(0, idat + 6), "cut.png", 3); },
               {"cut.png", "PNG chunk 'IDAT'", "truncated or corrupt"});
  std::string long_chunk = png;
  long_chunk[idat - 4] = char(0x80);  // length >= 2^31: past what PNG allows
  expect_error([&] { data::decode_image(long_chunk, "long.png", 3); }, {"long.png", "more than the format allows"});
}

// fuzz_image: "P6 6999...9" overflowed stb 2.27's int while it read the PPM header's width (UBSan signed overflow;
// bounded upstream in 2.28). check_pnm_header refuses a header number past INT_MAX first; real headers still decode.
TEST(FuzzRegressions, PnmHeaderNumberPastIntIsRefused) {
  const std::string bad = read_reproducer("fuzz_image", "pnm_width_overflows_int").substr(1);  // byte 0: channels
  expect_error([&] { data::decode_image(bad, "bad.ppm", 3); }, {"bad.ppm", "PNM header's width", "too large"});
  expect_error([&] { data::decode_image("P5 # a comment\n4 99999999999 255\n", "tall.pgm", 1); },
               {"tall.pgm", "PNM header's height", "too large"});
  expect_error([&] { data::decode_image("P5\n2 2\n2147483648\n", "deep.pgm", 1); }, {"deep.pgm", "maximum value"});
  const std::string deep16 = read_reproducer("fuzz_image", "pnm_16bit_channel_conversion_overflow").substr(1);
  expect_error([&] { data::decode_image(deep16, "deep16.ppm", 3); }, {"deep16.ppm", "16-bit PGM/PPM", "not supported"});
  const std::string ok = std::string("P5\n# made by hand\n3 2\n255\n") + std::string("\x01\x02\x03\x04\x05\x06", 6);
  Tensor img = data::decode_image(ok, "ok.pgm", 1);
  ASSERT_EQ(img.shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(img.tolist(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

// fuzz_image: corrupt entropy-coded data made stb 2.27's Huffman decoder index its 257-entry size table at
// 16,777,520 (an out-of-bounds read; bounded upstream in 2.28). JPEGs are decoded by libjpeg-turbo now, which calls
// the data corrupt; corrupt or missing data is an error, never grey pixels. Real JPEGs decode in every channel mode.
TEST(FuzzRegressions, JpegWithCorruptHuffmanDataIsAnError) {
  const std::string bad = read_reproducer("fuzz_image", "jpeg_bad_huffman_code_reads_past_stb_table").substr(1);
  expect_error([&] { data::decode_image(bad, "bad.jpg", 3); }, {"bad.jpg", "cannot decode this JPEG file", "corrupt"});
  std::vector<unsigned char> px(size_t(24 * 16 * 3));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>((i % 3 == 0 ? i / 3 : 90) % 256);
  std::string jpg;
  stbi_write_jpg_to_func([](void* ctx, void* d, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(d), size_t(n)); },
                         &jpg, 24, 16, 3, px.data(), 95);
  EXPECT_EQ(data::decode_image(jpg, "ok.jpg", 0).shape(), (Shape{16, 24, 3}));
  EXPECT_EQ(data::decode_image(jpg, "ok.jpg", 1).shape(), (Shape{16, 24, 1}));
  Tensor rgba = data::decode_image(jpg, "ok.jpg", 4);
  ASSERT_EQ(rgba.shape(), (Shape{16, 24, 4}));
  EXPECT_EQ(rgba.select(2, 3).to(DType::f32).min().item(), 255.0);  // opaque alpha
  Tensor rgb = data::decode_image(jpg, "ok.jpg", 3).to(DType::f32);
  const Tensor want = tensor(std::vector<float>(px.begin(), px.end()), {16, 24, 3});
  EXPECT_LT((rgb - want).abs().max().item(), 12.0);  // lossy at quality 95, but the same picture
  // Cut short: libjpeg would fill the missing rows with grey; here it is an error.
  expect_error([&] { data::decode_image(jpg.substr(0, jpg.size() - 60), "cut.jpg", 3); },
               {"cut.jpg", "truncated or corrupt"});
}

// Config readers let nlohmann's own type_error out ("cannot use value() with string") for a config.json that
// is not an object or whose "arch" is not a string: now a loom::Error that says what is wrong.
TEST(FuzzRegressions, LanguageModelConfigsOfTheWrongJsonTypeAreExplained) {
  const auto cfg = nlohmann::json::parse(read_reproducer("fuzz_config", "lstm_config_not_object"));
  ASSERT_TRUE(cfg.is_string());
  expect_error([&] { models::LSTMLMConfig::from_json(cfg); }, {"lstm-lm config: expected a JSON object"});
  expect_error([&] { models::LSTMLMConfig::from_json({{"vocab_size", 65}, {"layers", "two"}}); },
               {"lstm-lm config: field 'layers' must be an integer", "\"two\""});
  expect_error([&] { models::make_language_model({{"arch", 5}}); }, {"field 'arch' must be a string, found an integer 5"});
  EXPECT_FALSE(models::is_gpt2_config({{"arch", 5}}));
  const auto dir = test::scratch("not_object_lm");
  std::filesystem::create_directories(dir);
  test::write_file(dir / "config.json", "[1, 2]");
  expect_error([&] { models::load_language_model(dir.string()); }, {"config.json: expected a JSON object, found an array"});
}
