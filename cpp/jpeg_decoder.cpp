#include "jpeg_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

extern "C" {
#include <jpeglib.h>
#include <jerror.h>
}

#include "errors.h"

// Pillow's pixels come from libjpeg-turbo; IJG libjpeg (v7+) upsamples chroma differently.
#ifndef LIBJPEG_TURBO_VERSION
#error "vidlake decodes JPEG with libjpeg-turbo (Debian/Ubuntu: apt-get install libjpeg-dev); this jpeglib.h is not libjpeg-turbo's"
#endif

#define VIDLAKE_STR2(x) #x
#define VIDLAKE_STR(x) VIDLAKE_STR2(x)

namespace vidlake {

// Note (errors): libjpeg reports fatal errors through error_exit, which must not return; the
// only C-compatible way out is longjmp. Every setjmp below sits in a function whose frames
// between setjmp and the libjpeg call hold no C++ objects with destructors, so the jump skips
// nothing; the message is copied out and the C++ exception is thrown after the jump.
struct JpegPicture::State {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {0};
  bool truncated = false;
  bool created = false;
  bool started = false;
};

namespace {

void on_error(j_common_ptr cinfo) {
  auto* st = reinterpret_cast<JpegPicture::State*>(cinfo->client_data);
  (*cinfo->err->format_message)(cinfo, st->message);
  std::longjmp(st->jump, 1);
}

// Warnings (corrupt bytes libjpeg skips) are ignored as Pillow ignores them, except the end of
// data before the end of the image: Pillow refuses a truncated file, so do we.
void on_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    reinterpret_cast<JpegPicture::State*>(cinfo->client_data)->truncated = true;
  }
}

// 0 ok, 1 libjpeg error (message in st->message).
int read_header(JpegPicture::State* st, const uint8_t* data, size_t size) {
  if (setjmp(st->jump)) return 1;
  jpeg_create_decompress(&st->cinfo);
  st->created = true;
  jpeg_mem_src(&st->cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
  jpeg_read_header(&st->cinfo, TRUE);
  return 0;
}

int start(JpegPicture::State* st, J_COLOR_SPACE out_space) {
  if (setjmp(st->jump)) return 1;
  st->cinfo.out_color_space = out_space;  // Pillow's rawmode: L, RGB or CMYK; defaults otherwise
  jpeg_start_decompress(&st->cinfo);
  st->started = true;
  return 0;
}

int read_rows(JpegPicture::State* st, uint8_t* out, size_t stride, int rows) {
  if (setjmp(st->jump)) return 1;
  while (static_cast<int>(st->cinfo.output_scanline) < rows) {
    JSAMPROW row = out + static_cast<size_t>(st->cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&st->cinfo, &row, 1);
  }
  return 0;
}

int read_one_row(JpegPicture::State* st, uint8_t* row) {
  if (setjmp(st->jump)) return 1;
  JSAMPROW r = row;
  jpeg_read_scanlines(&st->cinfo, &r, 1);
  return 0;
}

// Pillow's MULDIV255 and cmyk2rgb on an inverted ("CMYK;I", Adobe) row.
inline uint8_t muldiv255(int a, int b) {
  const int t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

void convert_row(const uint8_t* in, int in_channels, bool cmyk, uint8_t* out, int channels, int width) {
  for (int x = 0; x < width; ++x) {
    uint8_t rgb[3];
    if (cmyk) {
      const uint8_t* p = in + 4 * x;
      const int nk = p[3];  // 255 - (255 - k): the inverted K
      for (int c = 0; c < 3; ++c) {
        const int v = nk - muldiv255(255 - p[c], nk);
        rgb[c] = static_cast<uint8_t>(v < 0 ? 0 : v);
      }
    } else if (in_channels == 1) {
      rgb[0] = rgb[1] = rgb[2] = in[x];
    } else {
      std::memcpy(rgb, in + 3 * x, 3);
    }
    uint8_t* o = out + static_cast<size_t>(x) * channels;
    if (channels == 1) {
      if (in_channels == 1) {
        o[0] = in[x];
      } else {  // Pillow's L24: ITU-R 601-2 luma in 16-bit fixed point
        o[0] = static_cast<uint8_t>((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
      }
    } else {
      o[0] = rgb[0];
      o[1] = rgb[1];
      o[2] = rgb[2];
      if (channels == 4) o[3] = 255;
    }
  }
}

}  // namespace

bool looks_like_jpeg(const uint8_t* data, int64_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

std::string jpeg_library_version() { return std::string("libjpeg-turbo ") + VIDLAKE_STR(LIBJPEG_TURBO_VERSION); }

std::unique_ptr<JpegPicture> JpegPicture::open(std::vector<uint8_t> data, const std::string& name) {
  std::unique_ptr<JpegPicture> pic(new JpegPicture());
  pic->data_ = std::move(data);
  pic->name_ = name;
  pic->state_ = std::make_unique<State>();
  State* st = pic->state_.get();
  st->cinfo.err = jpeg_std_error(&st->err);
  st->err.error_exit = on_error;
  st->err.emit_message = on_message;
  st->cinfo.client_data = st;
  if (read_header(st, pic->data_.data(), pic->data_.size()) != 0) {
    const int code = st->err.msg_code;
    // processes libjpeg-turbo does not implement: let libavcodec try
    if (code == JERR_SOF_UNSUPPORTED || code == JERR_BAD_PRECISION || code == JERR_NOT_COMPILED) return nullptr;
    throw DecodeError(name + ": cannot decode the JPEG image: " + st->message);
  }
  if (st->truncated) throw DecodeError(name + ": the JPEG image is truncated (its data ends before the picture)");
  const int comps = st->cinfo.num_components;
  if (st->cinfo.data_precision != 8 || (comps != 1 && comps != 3 && comps != 4)) return nullptr;
  pic->width_ = static_cast<int>(st->cinfo.image_width);
  pic->height_ = static_cast<int>(st->cinfo.image_height);
  pic->gray_ = comps == 1;
  pic->cmyk_ = comps == 4;
  return pic;
}

JpegPicture::~JpegPicture() {
  if (state_ && state_->created) jpeg_destroy_decompress(&state_->cinfo);
}

void JpegPicture::decode(int channels, uint8_t* out) {
  State* st = state_.get();
  if (st->started) throw DecodeError(name_ + ": the JPEG image was already decoded");
  const J_COLOR_SPACE space = gray_ ? JCS_GRAYSCALE : (cmyk_ ? JCS_CMYK : JCS_RGB);
  if (start(st, space) != 0) throw DecodeError(name_ + ": cannot decode the JPEG image: " + st->message);
  const int in_channels = st->cinfo.output_components;
  const int w = static_cast<int>(st->cinfo.output_width);
  const int h = static_cast<int>(st->cinfo.output_height);
  if (w != width_ || h != height_) throw DecodeError(name_ + ": the JPEG decoder changed the picture size");
  int ret = 0;
  if (!cmyk_ && in_channels == channels) {
    ret = read_rows(st, out, static_cast<size_t>(w) * channels, h);  // straight into the caller's rows
  } else {
    std::vector<uint8_t> row(static_cast<size_t>(w) * in_channels);
    for (int y = 0; y < h && ret == 0; ++y) {
      ret = read_one_row(st, row.data());
      if (ret == 0) convert_row(row.data(), in_channels, cmyk_, out + static_cast<size_t>(y) * w * channels, channels, w);
    }
  }
  if (ret != 0) throw DecodeError(name_ + ": cannot decode the JPEG image: " + st->message);
  if (st->truncated) throw DecodeError(name_ + ": the JPEG image is truncated (its data ends before the picture)");
}

}  // namespace vidlake
