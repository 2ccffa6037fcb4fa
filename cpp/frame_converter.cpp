#include "frame_converter.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace vidlake {

int quarter_turns_for_rotation(double degrees) {
  long turns = std::lround(-degrees / 90.0);
  return static_cast<int>(((turns % 4) + 4) % 4);
}

SwsContext* FrameConverter::context_for(const AVFrame* frame, int dst_w, int dst_h, AVPixelFormat dst_fmt,
                                        bool stream_colors) {
  if (!stream_colors && applied_colorspace_ != -1) {
    sws_.reset();  // back to PyAV's conversion: a fresh context has swscale's defaults
    applied_colorspace_ = applied_range_ = -1;
  }
  SwsContext* before = sws_.get();
  SwsContext* ctx = sws_getCachedContext(sws_.release(), frame->width, frame->height,
                                         static_cast<AVPixelFormat>(frame->format), dst_w, dst_h, dst_fmt,
                                         SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (ctx == nullptr) {
    throw DecodeError(std::string("cannot convert pixel format ") +
                      (av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)) ?: "unknown"));
  }
  sws_.reset(ctx);
  if (ctx != before) applied_colorspace_ = applied_range_ = -1;  // a new context has default details
  const int colorspace = stream_colors ? frame->colorspace : -1;
  const int range = stream_colors ? frame->color_range : -1;
  if (stream_colors && (colorspace != applied_colorspace_ || range != applied_range_)) {
    // As FFmpeg's scale filter does with in_color_matrix=auto: the input matrix
    // and range from the frame, everything else as swscale set it up.
    int *inv_table = nullptr, *table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    sws_getColorspaceDetails(ctx, &inv_table, &src_range, &table, &dst_range, &brightness, &contrast, &saturation);
    const int* src_coeffs = inv_table;
    if (frame->colorspace != AVCOL_SPC_UNSPECIFIED) src_coeffs = sws_getCoefficients(frame->colorspace);
    if (frame->color_range != AVCOL_RANGE_UNSPECIFIED) src_range = frame->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(ctx, src_coeffs, src_range, table, dst_range, brightness, contrast, saturation);
    applied_colorspace_ = colorspace;
    applied_range_ = range;
  }
  return ctx;
}

void FrameConverter::convert(const AVFrame* frame, const OutputLayout& layout, uint8_t* dst) {
  const int c = layout.channels();
  const bool sideways = layout.quarter_turns % 2 == 1;
  // Size before rotation.
  const int w = sideways ? layout.height : layout.width;
  const int h = sideways ? layout.width : layout.height;
  const AVPixelFormat dst_fmt = layout.gray ? AV_PIX_FMT_GRAY8 : (layout.alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24);
  SwsContext* ctx = context_for(frame, w, h, dst_fmt, layout.stream_colors);
  // Note [Output stride]: swscale's SIMD converters pick how many pixels to
  // write per row from the destination stride, and may write up to a few pixels
  // past the width. PyAV converts into av_image_alloc(align=16) buffers, whose
  // stride is align16(align8(w) * c). Converting with that same stride gives the
  // same code path (so the same bits) and never writes outside our buffers; when
  // it equals the tight stride w * c (w a multiple of 16), we write straight
  // into the caller's rows.
  const int tight = w * c;
  const int padded = FFALIGN(FFALIGN(w, 8) * c, 16);
  const bool direct = layout.quarter_turns == 0 && padded == tight;
  uint8_t* target = dst;
  int stride = tight;
  if (!direct) {
    scratch_.resize(static_cast<size_t>(padded) * h + 64);
    target = scratch_.data();
    stride = padded;
  }
  uint8_t* planes[4] = {target, nullptr, nullptr, nullptr};
  int strides[4] = {stride, 0, 0, 0};
  sws_scale(ctx, frame->data, frame->linesize, 0, frame->height, planes, strides);
  if (direct) return;
  const uint8_t* src = target;
  if (layout.quarter_turns == 0) {
    for (int y = 0; y < h; ++y) {
      std::memcpy(dst + static_cast<int64_t>(y) * tight, src + static_cast<int64_t>(y) * stride,
                  static_cast<size_t>(tight));
    }
    return;
  }
  // dst is (layout.height, layout.width, c); src is (h, w, c) with `stride`.
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      int ox, oy;
      switch (layout.quarter_turns) {
        case 1:  // clockwise
          ox = h - 1 - y;
          oy = x;
          break;
        case 2:
          ox = w - 1 - x;
          oy = h - 1 - y;
          break;
        default:  // 3: counter-clockwise
          ox = y;
          oy = w - 1 - x;
          break;
      }
      std::memcpy(dst + (static_cast<int64_t>(oy) * layout.width + ox) * c,
                  src + static_cast<int64_t>(y) * stride + static_cast<int64_t>(x) * c, static_cast<size_t>(c));
    }
  }
}

}  // namespace vidlake
