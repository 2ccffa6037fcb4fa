#include "keyframe_reader.h"

#include <cstring>
#include <string>

#include "codec_open.h"
#include "errors.h"
#include "ffmpeg_util.h"
#include "packet_feeder.h"

namespace vidlake {

KeyframeStats decode_keyframes(ByteSource& source, const PacketIndex& index, const std::vector<int32_t>& frames,
                               const OutputLayout& layout, uint8_t* out, uint8_t* produced, int threads) {
  KeyframeStats st;
  const int64_t bytes = layout.frame_bytes();
  std::memset(produced, 0, frames.size());
  if (frames.empty()) return st;
  for (int32_t f : frames) {
    const int32_t p = index.frame_packet.at(static_cast<size_t>(f));
    if ((index.packets.at(static_cast<size_t>(p)).flags & 1u) == 0) {
      throw ArgumentError(source.name() + ": frame " + std::to_string(f) + " is not a keyframe");
    }
  }
  CodecContextPtr codec = open_codec(index, threads, index.damaged, source.name());
  // Note [Keyframes alone]: only intra pictures are wanted; a decoder that
  // honours skip_frame drops anything else a keyframe packet might carry.
  codec->skip_frame = AVDISCARD_NONKEY;
  PacketFeeder feeder(index, source);
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  FrameConverter converter;
  for (size_t i = 0; i < frames.size(); ++i) {
    const int32_t want = frames[i];
    const int32_t p = index.frame_packet[static_cast<size_t>(want)];
    // A container keyframe a decode cannot start from (kPacketNotSeekable): the caller reads it.
    if (!index.packets[static_cast<size_t>(p)].key()) continue;
    feeder.position(p);
    int32_t number = -1;
    if (!feeder.next(p, pkt.get(), &number)) {
      throw DecodeError(source.name() + ": packet " + std::to_string(p) + " could not be read");
    }
    int ret = avcodec_send_packet(codec.get(), pkt.get());
    av_packet_unref(pkt.get());
    ++st.packets_decoded;
    if (ret >= 0 || ret == AVERROR(EAGAIN)) {
      avcodec_send_packet(codec.get(), nullptr);  // drain: the picture comes out now
      for (int guard = 0; guard < 64; ++guard) {
        ret = avcodec_receive_frame(codec.get(), frame.get());
        if (ret < 0) break;  // EOF (drained), or a damaged picture: the caller falls back
        ++st.frames_decoded;
        const int64_t token = frame->pts;
        if (!produced[i] && token >= 0 && token < static_cast<int64_t>(index.packets.size()) &&
            index.packet_frame[static_cast<size_t>(token)] == want) {
          converter.convert(frame.get(), layout, out + static_cast<int64_t>(i) * bytes);
          ++st.frames_converted;
          produced[i] = 1;
        }
        av_frame_unref(frame.get());
      }
    }
    avcodec_flush_buffers(codec.get());  // leaves the drained state: ready for the next keyframe
  }
  return st;
}

}  // namespace vidlake
