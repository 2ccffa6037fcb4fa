#include "frame_converter.h"

#include <cmath>
#include <cstring>

#include "errors.h"

namespace vidlake {

int quarter_turns_for_rotation(double degrees) {
  long turns = std::lround(-degrees / 90.0);
  return static_cast<int>(((turns % 4) + 4) % 4);
}

SwsContext* FrameConverter::context_for(const AVFrame* frame, int dst_w, int dst_h, AVPixelFormat dst_fmt) {
  SwsContext* ctx = sws_getCachedContext(sws_.release(), frame->width, frame->height,
                                         static_cast<AVPixelFormat>(frame->format), dst_w, dst_h, dst_fmt,
                                         SWS_BILINEAR, nullptr, nullptr, nullptr);
  if (ctx == nullptr) {
    throw DecodeError(std::string("cannot convert pixel format ") +
                      (av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)) ?: "unknown"));
  }
  sws_.reset(ctx);
  return ctx;
}

void FrameConverter::convert(const AVFrame* frame, const OutputLayout& layout, uint8_t* dst) {
  const int c = layout.channels();
  const bool sideways = layout.quarter_turns % 2 == 1;
  // Size before rotation.
  const int w = sideways ? layout.height : layout.width;
  const int h = sideways ? layout.width : layout.height;
  SwsContext* ctx = context_for(frame, w, h, layout.gray ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24);
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
