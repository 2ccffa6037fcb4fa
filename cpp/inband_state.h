// In-band decoder state (Note [Replayed in-band state]): what a decoder that
// starts at a keyframe has not seen and a sequential decode has. Recorded while
// the index is built (InbandScanner), replayed before the first packet of every
// decode run (replay_prefix, x264_build in codec_open.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

extern "C" {
#include <libavcodec/codec_id.h>
}

#include "packet_index.h"

namespace vidlake {

class InbandScanner {
 public:
  // nal_length_size: FrameFilter::nal_length_size() (0: Annex B start codes).
  InbandScanner(AVCodecID codec_id, int nal_length_size);
  // Looks at one packet in decode order (H.264 / HEVC; other codecs: nothing).
  void scan(int32_t packet, const uint8_t* data, int64_t size);
  InbandState finish() { return std::move(state_); }

 private:
  void nal(int32_t packet, const uint8_t* data, int64_t size);
  AVCodecID codec_id_;
  int nal_length_size_;
  InbandState state_;
  std::unordered_map<std::string, int32_t> known_;  // parameter set -> its index
};

// The bytes to put in front of packet `start` when a decode run begins there:
// every in-band parameter set that appeared before it, each once, in the order
// of its last appearance (so the latest version of every id wins, as in a
// sequential decode), framed like the stream's packets. Empty when none.
std::string replay_prefix(const PacketIndex& index, int32_t start);

}  // namespace vidlake
