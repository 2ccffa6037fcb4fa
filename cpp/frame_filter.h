// Which packets are frames. A frame is what a plain sequential decode emits; the
// rules below decide it from the packet bytes alone (no decoding):
//   - a packet flagged discard (edit lists) or empty is not a frame;
//   - H.264/HEVC: a packet whose NAL units do not split (a length prefix runs past
//     the end) or that holds no picture slice decodes to nothing: not a frame;
//   - VP8: a frame with show_frame = 0 (an invisible alt-ref) is not a frame;
//   - VP9: a packet (or superframe) none of whose frames is shown is not a frame;
//   - everything else (AV1 temporal units, MPEG-2/4, MJPEG, ...) is one frame.
#pragma once

#include <cstdint>
#include <string>

extern "C" {
#include <libavcodec/codec_id.h>
}

namespace vidlake {

class FrameFilter {
 public:
  FrameFilter(AVCodecID codec_id, const std::string& extradata);
  bool is_frame(const uint8_t* data, int64_t size) const;
  // False when a packet the container flags key cannot start a decode: H.264/HEVC
  // access units that mix random-access slices with slices referencing earlier
  // pictures (HEVC: a VCL NAL outside IRAP types 16-23; H.264: IDR and non-IDR
  // slices together). Other codecs: true.
  bool is_clean_random_access(const uint8_t* data, int64_t size) const;
  // H.264/HEVC framing: bytes of each NAL unit's length prefix (avcC / hvcC), 0 for Annex B.
  int nal_length_size() const { return nal_length_size_; }

 private:
  bool nal_has_picture(const uint8_t* data, int64_t size) const;
  template <typename Fn>
  bool for_each_nal(const uint8_t* data, int64_t size, Fn fn) const;
  AVCodecID codec_id_;
  int nal_length_size_ = 0;  // 0: Annex B start codes
};

}  // namespace vidlake
