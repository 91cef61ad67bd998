#include "loom/data/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <vector>

#include <jpeglib.h>
#include <jerror.h>  // the message codes (JWRN_*)

#include "loom/core/error.h"
#include "loom/core/limits.h"

namespace loom::data {

namespace {

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to the setjmp of the stage
// that is running. Each stage below is a function of its own whose frames hold only plain data, so the jump
// skips no destructor.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings (level -1) are corrupt or missing data that libjpeg would paper over with grey; they are errors here,
// except bytes between segments ("extraneous bytes before marker"), which many real cameras write.
void on_message(j_common_ptr c, int level) {
  if (level < 0 && c->err->msg_code != JWRN_EXTRANEOUS_DATA) on_error(c);
}

// A progressive JPEG of many tiny scans makes the decoder walk the whole image once per scan: bounded here as in
// libjpeg-turbo's own fuzzers.
constexpr int kMaxScans = 500;
void on_progress(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxScans) {
    auto* e = reinterpret_cast<JpegErrors*>(c->err);
    std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(e->jump, 1);
  }
}

bool read_header(jpeg_decompress_struct* d, JpegErrors* e, const unsigned char* data, size_t n) {
  if (setjmp(e->jump)) return false;
  jpeg_mem_src(d, data, static_cast<unsigned long>(n));
  jpeg_read_header(d, TRUE);
  return true;
}

bool start(jpeg_decompress_struct* d, JpegErrors* e, J_COLOR_SPACE out) {
  if (setjmp(e->jump)) return false;
  d->out_color_space = out;
  jpeg_start_decompress(d);
  return true;
}

bool read_rows(jpeg_decompress_struct* d, JpegErrors* e, unsigned char* dst, size_t row_bytes) {
  if (setjmp(e->jump)) return false;
  while (d->output_scanline < d->output_height) {
    JSAMPROW row = dst + size_t(d->output_scanline) * row_bytes;
    jpeg_read_scanlines(d, &row, 1);
  }
  jpeg_finish_decompress(d);
  return true;
}

bool create(jpeg_decompress_struct* d, JpegErrors* e) {
  if (setjmp(e->jump)) return false;
  jpeg_create_decompress(d);  // fails only when header and library versions differ
  return true;
}

struct Decompressor {
  jpeg_decompress_struct d{};
  JpegErrors e{};
  jpeg_progress_mgr progress{};
  bool created = false;
  Decompressor() {
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = on_error;
    e.pub.emit_message = on_message;
    created = create(&d, &e);
    progress.progress_monitor = on_progress;
    d.progress = &progress;
  }
  ~Decompressor() {
    if (created) jpeg_destroy_decompress(&d);
  }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
};

}  // namespace

Tensor decode_jpeg(const std::string& bytes, const std::string& name, int channels) {
  LOOM_CHECK(channels >= 0 && channels <= 4, name, ": channels must be 0..4, got ", channels);
  Decompressor j;
  LOOM_CHECK(j.created, name, ": cannot start the JPEG decoder (", j.e.message, ")");
  auto fail = [&](const char* stage) -> Tensor {
    LOOM_FAIL(name, ": cannot decode this JPEG file: it is truncated or corrupt (", bytes.size(), " bytes; ", stage,
              ": ", j.e.message, ")");
  };
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const bool header_ok = read_header(&j.d, &j.e, data, bytes.size());
  const int64_t w = j.d.image_width, h = j.d.image_height, pixels = w * h, limit = max_image_pixels();
  // A header that failed after its frame (SOF) was read still reports a declared size beyond the limits as such.
  if (!header_ok && (w == 0 || h == 0 || pixels <= limit)) return fail("header");
  LOOM_CHECK(w > 0 && h > 0, name, ": the JPEG header declares an empty image (", w, "x", h, ")");
  LOOM_CHECK(pixels <= limit, name, ": the JPEG header declares ", w, "x", h, " = ", pixels,
             " pixels, more than the limit of ", limit, " (set LOOM_MAX_IMAGE_PIXELS to allow larger images)");
  // Every 8x8 block of every component is coded in at least one bit (its DC difference), so a JPEG holds at most
  // 512 pixels a byte; 8192 leaves 16x room for any real file and refuses headers that promise an image the data
  // cannot hold (690 bytes declaring 1024x51976).
  LOOM_CHECK(pixels <= 8192 * int64_t(bytes.size()), name, ": the JPEG header declares ", w, "x", h, " = ", pixels,
             " pixels but the file has only ", bytes.size(), " bytes: it is truncated or corrupt");
  check_fits_in_memory(double(pixels) * 16.0, name + ": decoding a " + std::to_string(w) + "x" + std::to_string(h) +
                                                  " image");  // the u8 decode plus the float planes a resize uses
  const bool cmyk = j.d.jpeg_color_space == JCS_CMYK || j.d.jpeg_color_space == JCS_YCCK;
  const bool grey_file = j.d.jpeg_color_space == JCS_GRAYSCALE || j.d.num_components == 1;
  const int out_c = channels ? channels : (grey_file ? 1 : 3);
  const J_COLOR_SPACE space = cmyk ? JCS_CMYK : out_c == 1 ? JCS_GRAYSCALE : out_c == 4 ? JCS_EXT_RGBA : JCS_RGB;
  if (!start(&j.d, &j.e, space)) return fail("start");
  const int got_c = j.d.output_components;
  std::vector<unsigned char> px(size_t(h) * size_t(w) * size_t(got_c));
  if (!read_rows(&j.d, &j.e, px.data(), size_t(w) * size_t(got_c))) return fail("data");
  Tensor t = make_tensor({h, w, out_c}, DType::u8);
  auto* dst = static_cast<unsigned char*>(t.raw_data());
  if (!cmyk) {
    LOOM_CHECK(got_c == out_c, name, ": the JPEG decoder gave ", got_c, " channels for ", out_c);
    std::copy(px.begin(), px.end(), dst);
    return t;
  }
  // Adobe writes CMYK inverted: channel value v means (255 - v) of ink, so R = C * K / 255 (as PIL and stb do).
  for (size_t i = 0, n = size_t(h) * size_t(w); i < n; ++i) {
    const unsigned char* s = &px[i * 4];
    const int k = s[3];
    const unsigned char rgb[3] = {static_cast<unsigned char>((s[0] * k + 127) / 255),
                                  static_cast<unsigned char>((s[1] * k + 127) / 255),
                                  static_cast<unsigned char>((s[2] * k + 127) / 255)};
    unsigned char* o = dst + i * size_t(out_c);
    if (out_c == 1) o[0] = static_cast<unsigned char>((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
    else {
      o[0] = rgb[0], o[1] = rgb[1], o[2] = rgb[2];
      if (out_c == 4) o[3] = 255;
    }
  }
  return t;
}

}  // namespace loom::data
