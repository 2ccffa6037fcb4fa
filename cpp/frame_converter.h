// Colour conversion and resize of decoded frames straight into output rows,
// with the exact swscale set-up PyAV's to_ndarray uses (SWS_BILINEAR, the
// frame's own colourspace and range), so results are bit-identical to it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ffmpeg_util.h"

namespace vidlake {

struct OutputLayout {
  int height = 0;   // rows of the output image (after rotation)
  int width = 0;
  bool gray = false;
  bool alpha = false;     // RGBA output (images with transparency)
  int quarter_turns = 0;  // clockwise 90-degree turns applied after conversion (0..3)
  // false: PyAV's conversion (swscale's default BT.601 matrix, as to_ndarray);
  // true: the frame's own matrix and range, as the ffmpeg CLI and torchcodec.
  bool stream_colors = false;
  // true: size= was asked for, so every frame is scaled to (height, width) whatever its own
  // size; false: (height, width) is the stream's declared size and a frame of another size is
  // an error (Note [Resolution changes] in video_decoder.cpp).
  bool explicit_size = false;
  int channels() const { return gray ? 1 : (alpha ? 4 : 3); }
  int64_t frame_bytes() const { return static_cast<int64_t>(height) * width * channels(); }
};

class FrameConverter {
 public:
  // Converts `frame` into `dst` (frame_bytes() bytes, rows of width*channels).
  void convert(const AVFrame* frame, const OutputLayout& layout, uint8_t* dst);

 private:
  SwsContext* context_for(const AVFrame* frame, int dst_w, int dst_h, AVPixelFormat dst_fmt, bool stream_colors);
  SwsContextPtr sws_;
  // What sws_ was made for (source w, h, format; destination w, h, format) and the colour
  // details set on it (-1: swscale's defaults); see Note [One context per conversion].
  std::array<int, 6> made_for_{};
  int applied_colorspace_ = -1;
  int applied_range_ = -1;
  std::vector<uint8_t> scratch_;  // stride-padded rows (see Note [Output stride])
};

// Clockwise quarter turns that display a frame upright, from a display-matrix
// rotation in degrees (counter-clockwise, as FFmpeg reports it).
int quarter_turns_for_rotation(double degrees);

}  // namespace vidlake
