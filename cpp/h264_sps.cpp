#include "h264_sps.h"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" {
#include <libavutil/pixfmt.h>
}

namespace vidlake {

namespace {

// Reads an RBSP (emulation-prevention bytes removed) bit by bit; every read past
// the end sets `bad` and returns 0, so a truncated SPS is detected, not misread.
class Bits {
 public:
  explicit Bits(std::vector<uint8_t> rbsp) : data_(std::move(rbsp)) {}
  uint32_t u(int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; ++i) {
      if (pos_ >= data_.size() * 8) {
        bad = true;
        return 0;
      }
      v = (v << 1) | ((data_[pos_ / 8] >> (7 - pos_ % 8)) & 1u);
      ++pos_;
    }
    return v;
  }
  uint32_t ue() {
    int zeros = 0;
    while (!bad && u(1) == 0) {
      if (++zeros > 31) {
        bad = true;
        return 0;
      }
    }
    if (zeros == 0) return 0;
    return ((1u << zeros) - 1) + u(zeros);
  }
  int32_t se() {
    const uint32_t k = ue();
    return (k & 1) ? static_cast<int32_t>((k + 1) / 2) : -static_cast<int32_t>(k / 2);
  }
  bool bad = false;

 private:
  std::vector<uint8_t> data_;
  size_t pos_ = 0;
};

void skip_scaling_list(Bits& b, int size) {
  int last = 8, next = 8;
  for (int j = 0; j < size && !b.bad; ++j) {
    if (next != 0) next = (last + b.se() + 256) % 256;
    last = next == 0 ? last : next;
  }
}

bool high_profile(uint32_t profile) {
  switch (profile) {
    case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128: case 138:
    case 139: case 134: case 135: case 144:
      return true;
    default:
      return false;
  }
}

}  // namespace

// Note [H.264 pixel format]: without avformat_find_stream_info the index learns
// the pixel format from libavcodec's get_format callback, which costs a decoder
// context per file (~40% of indexing a small file, most of its page faults).
// For H.264 the decoder's choice is a function of the SPS: chroma_format_idc
// and bit depth pick the family, and the colour range (the SPS's
// video_full_range_flag, else the container's) picks the JPEG-range variant of
// the 8-bit formats. This reads exactly those fields and reproduces the choice
// for 8-bit 4:2:0 / 4:2:2 / 4:4:4 (non-RGB) and 10-bit 4:2:0 / 4:2:2 / 4:4:4;
// anything else returns -1 and the decoder is asked. Every H.264 asset in the
// tests checks the result against the format of PyAV's first decoded frame.
int h264_pixel_format(const std::string& extradata_bytes, int container_range, int container_space) {
  const auto* extra = reinterpret_cast<const uint8_t*>(extradata_bytes.data());
  const size_t size = extradata_bytes.size();
  // avcC: version 1, profile, compat, level, lengthSize, numOfSPS, then u16 size + NAL.
  if (size < 8 || extra[0] != 1) return -1;
  if ((extra[5] & 0x1f) < 1) return -1;
  const size_t len = (static_cast<size_t>(extra[6]) << 8) | extra[7];
  if (len < 4 || 8 + len > size || (extra[8] & 0x1f) != 7) return -1;
  std::vector<uint8_t> rbsp;
  rbsp.reserve(len);
  int zeros = 0;
  for (size_t i = 9; i < 8 + len; ++i) {  // skip the NAL header byte; drop emulation prevention
    const uint8_t c = extra[i];
    if (zeros >= 2 && c == 3) {
      zeros = 0;
      continue;
    }
    zeros = c == 0 ? zeros + 1 : 0;
    rbsp.push_back(c);
  }
  Bits b(std::move(rbsp));
  const uint32_t profile = b.u(8);
  b.u(8);  // constraint flags
  b.u(8);  // level
  b.ue();  // seq_parameter_set_id
  uint32_t chroma = 1, depth = 8, depth_chroma = 8;
  if (high_profile(profile)) {
    chroma = b.ue();
    if (chroma == 3 && b.u(1)) return -1;  // separate_colour_plane_flag: left to the decoder
    depth = b.ue() + 8;
    depth_chroma = b.ue() + 8;
    b.u(1);  // qpprime_y_zero_transform_bypass_flag
    if (b.u(1)) {  // seq_scaling_matrix_present_flag
      for (int i = 0; i < (chroma != 3 ? 8 : 12) && !b.bad; ++i) {
        if (b.u(1)) skip_scaling_list(b, i < 6 ? 16 : 64);
      }
    }
  }
  b.ue();  // log2_max_frame_num_minus4
  const uint32_t poc_type = b.ue();
  if (poc_type == 0) {
    b.ue();
  } else if (poc_type == 1) {
    b.u(1);
    b.se();
    b.se();
    const uint32_t cycle = b.ue();
    if (cycle > 255) return -1;
    for (uint32_t i = 0; i < cycle && !b.bad; ++i) b.se();
  } else if (poc_type != 2) {
    return -1;
  }
  b.ue();    // max_num_ref_frames
  b.u(1);    // gaps_in_frame_num_value_allowed_flag
  b.ue();    // pic_width_in_mbs_minus1
  b.ue();    // pic_height_in_map_units_minus1
  if (!b.u(1)) b.u(1);  // frame_mbs_only_flag, else mb_adaptive_frame_field_flag
  b.u(1);    // direct_8x8_inference_flag
  if (b.u(1)) {  // frame_cropping_flag
    for (int i = 0; i < 4; ++i) b.ue();
  }
  int range = container_range;
  int space = container_space;
  if (b.u(1)) {    // vui_parameters_present_flag
    if (b.u(1)) {  // aspect_ratio_info_present_flag
      if (b.u(8) == 255) b.u(32);
    }
    if (b.u(1)) b.u(1);  // overscan_info_present_flag, overscan_appropriate_flag
    if (b.u(1)) {        // video_signal_type_present_flag
      b.u(3);            // video_format
      range = b.u(1) ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
      if (b.u(1)) {      // colour_description_present_flag
        b.u(8);
        b.u(8);
        space = static_cast<int>(b.u(8));
      }
    }
  }
  if (b.bad || depth != depth_chroma) return -1;
  const bool jpeg = range == AVCOL_RANGE_JPEG;
  if (chroma == 3 && space == AVCOL_SPC_RGB) return -1;  // GBRP: left to the decoder
  if (depth == 8) {
    if (chroma == 1) return jpeg ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
    if (chroma == 2) return jpeg ? AV_PIX_FMT_YUVJ422P : AV_PIX_FMT_YUV422P;
    if (chroma == 3) return jpeg ? AV_PIX_FMT_YUVJ444P : AV_PIX_FMT_YUV444P;
    return -1;  // monochrome
  }
  if (depth == 10) {
    if (chroma == 1) return AV_PIX_FMT_YUV420P10;
    if (chroma == 2) return AV_PIX_FMT_YUV422P10;
    if (chroma == 3) return AV_PIX_FMT_YUV444P10;
  }
  return -1;
}

}  // namespace vidlake
