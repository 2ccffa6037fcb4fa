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
  // Note [One context per conversion]: a context is reused only for the same sizes, formats and
  // colour details. Anything else gets a fresh context (swscale's defaults) with the details set
  // once on it: changing the details of a context that already converted with others is not
  // always the same as setting them on a fresh one (reading one frame with the stream's colours,
  // then with BT.601, then the next with the stream's gave 15 levels off on a full-range BT.709
  // stream), and malloc may hand a new context the old one's address.
  const std::array<int, 6> key = {frame->width, frame->height, frame->format, dst_w, dst_h, static_cast<int>(dst_fmt)};
  // Note [Enum fields from FFmpeg] (ffmpeg_util.h): read as ints, never loaded as the enums.
  const int frame_colorspace = enum_value(frame->colorspace);
  const int frame_range = enum_value(frame->color_range);
  const int colorspace = stream_colors ? frame_colorspace : -1;
  const int range = stream_colors ? frame_range : -1;
  if (sws_ && key == made_for_ && colorspace == applied_colorspace_ && range == applied_range_) return sws_.get();
  sws_.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), dst_w, dst_h,
                            dst_fmt, SWS_BILINEAR, nullptr, nullptr, nullptr));
  SwsContext* ctx = sws_.get();
  if (ctx == nullptr) {
    throw DecodeError(std::string("cannot convert pixel format ") +
                      (av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format)) ?: "unknown"));
  }
  made_for_ = key;
  applied_colorspace_ = colorspace;
  applied_range_ = range;
  if (stream_colors) {
    // As FFmpeg's scale filter does with in_color_matrix=auto: the input matrix
    // and range from the frame, everything else as swscale set it up.
    int *inv_table = nullptr, *table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    sws_getColorspaceDetails(ctx, &inv_table, &src_range, &table, &dst_range, &brightness, &contrast, &saturation);
    const int* src_coeffs = inv_table;
    if (frame_colorspace != AVCOL_SPC_UNSPECIFIED) src_coeffs = sws_getCoefficients(frame_colorspace);
    if (frame_range != AVCOL_RANGE_UNSPECIFIED) src_range = frame_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(ctx, src_coeffs, src_range, table, dst_range, brightness, contrast, saturation);
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
  // Gray output is the luma plane as swscale converts it by default (as the ffmpeg CLI and PyAV do):
  // colour matrices do not apply to it.
  SwsContext* ctx = context_for(frame, w, h, dst_fmt, layout.stream_colors && !layout.gray);
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
