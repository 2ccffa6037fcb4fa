#include "decode_order.h"

#include <algorithm>
#include <cstdint>

#include "codec_open.h"
#include "ffmpeg_util.h"
#include "packet_feeder.h"

namespace vidlake {

namespace {

// Note [Best-effort timestamps]
// A frame's timestamp is FFmpeg's best_effort_timestamp from a plain sequential
// decode: what ffprobe prints as best_effort_timestamp_time and torchcodec
// reports. libavcodec computes it from the frame's reordered pts and the dts of
// the packet that was being decoded when the frame came out, counting which of
// the two has gone backwards more often so far (guess_correct_pts), so it
// depends on the whole decode history and on the thread count (with frame
// threads a frame comes out one packet per extra thread later). This decode is
// therefore the reference one: one thread, every packet from the first, the
// container's pts and dts. Frames are identified through a field libavcodec
// copies from packet to frame without reading it (opaque since FFmpeg 6.0,
// pkt_pos before), not through pts as during reads.
#ifdef AV_CODEC_FLAG_COPY_OPAQUE
constexpr int kTokenFlags = AV_CODEC_FLAG_COPY_OPAQUE;
void set_token(AVPacket* pkt, int32_t number) {
  pkt->opaque = reinterpret_cast<void*>(static_cast<intptr_t>(number) + 1);
}
int64_t token_of(const AVFrame* frame) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(frame->opaque)) - 1; }
#else
constexpr int kTokenFlags = 0;
void set_token(AVPacket* pkt, int32_t number) { pkt->pos = number; }
int64_t token_of(const AVFrame* frame) { return frame->pkt_pos; }
#endif

}  // namespace

OutputOrder decode_output_order(const PacketIndex& index, ByteSource& source) {
  CodecContextPtr codec = open_codec(index, 1, true, source.name(), kTokenFlags);
  PacketFeeder feeder(index, source);
  feeder.position(0);
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  const int32_t n = static_cast<int32_t>(index.packets.size());
  OutputOrder out;
  std::vector<bool> seen(static_cast<size_t>(n), false);
  auto drain = [&]() {
    while (avcodec_receive_frame(codec.get(), frame.get()) >= 0) {
      const int64_t token = token_of(frame.get());
      if (token >= 0 && token < n && !seen[static_cast<size_t>(token)]) {
        seen[static_cast<size_t>(token)] = true;
        out.packets.push_back(static_cast<int32_t>(token));
        out.timestamps.push_back(frame->best_effort_timestamp);
      }
      av_frame_unref(frame.get());
    }
  };
  int32_t number;
  while (feeder.next(n - 1, pkt.get(), &number)) {
    pkt->pts = index.packets[static_cast<size_t>(number)].pts;  // the container's, not the read token
    set_token(pkt.get(), number);
    while (avcodec_send_packet(codec.get(), pkt.get()) == AVERROR(EAGAIN)) drain();
    av_packet_unref(pkt.get());
    drain();
  }
  avcodec_send_packet(codec.get(), nullptr);
  drain();
  return out;
}

namespace {
// get_format runs once the decoder has parsed the sequence header, before any
// picture is reconstructed: note the format it would pick. H.264/HEVC then stop
// cleanly (the slice is dropped); other codecs decode their first frame.
AVPixelFormat capture_format(AVCodecContext* ctx, const AVPixelFormat* formats) {
  const AVPixelFormat chosen = avcodec_default_get_format(ctx, formats);
  *static_cast<int*>(ctx->opaque) = chosen;
  const bool stop = ctx->codec_id == AV_CODEC_ID_H264 || ctx->codec_id == AV_CODEC_ID_HEVC;
  return stop ? AV_PIX_FMT_NONE : chosen;
}
}  // namespace

int decode_first_frame_format(const PacketIndex& index, ByteSource& source) {
  CodecContextPtr codec = open_codec(index, 1, true, source.name());
  int captured = -1;
  codec->opaque = &captured;
  codec->get_format = &capture_format;
  codec->log_level_offset = AV_LOG_DEBUG;  // the deliberate stop is not an error worth printing
  PacketFeeder feeder(index, source);
  const int32_t first = index.keyframe_packets.empty() ? 0 : index.keyframe_packets.front();
  const int32_t last = std::min<int32_t>(static_cast<int32_t>(index.packets.size()) - 1, first + 32);
  feeder.position(first);
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  int32_t number;
  // Decoders without get_format (wrappers such as libdav1d) decode the frame.
  while (captured < 0 && feeder.next(last, pkt.get(), &number)) {
    avcodec_send_packet(codec.get(), pkt.get());
    av_packet_unref(pkt.get());
    if (captured < 0 && avcodec_receive_frame(codec.get(), frame.get()) >= 0) return frame->format;
  }
  if (captured < 0) {
    avcodec_send_packet(codec.get(), nullptr);
    if (avcodec_receive_frame(codec.get(), frame.get()) >= 0) return frame->format;
  }
  return captured;
}

}  // namespace vidlake
