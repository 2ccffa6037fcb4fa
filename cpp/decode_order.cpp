#include "decode_order.h"

#include <algorithm>

#include "codec_open.h"
#include "ffmpeg_util.h"
#include "packet_feeder.h"

namespace vidlake {

std::vector<int32_t> decode_output_order(const PacketIndex& index, ByteSource& source) {
  CodecContextPtr codec = open_codec(index, 0, index.damaged, source.name());
  PacketFeeder feeder(index, source);
  feeder.position(0);
  PacketPtr pkt = make_packet();
  FramePtr frame = make_frame();
  const int32_t n = static_cast<int32_t>(index.packets.size());
  std::vector<int32_t> order;
  std::vector<bool> seen(static_cast<size_t>(n), false);
  auto drain = [&]() {
    while (avcodec_receive_frame(codec.get(), frame.get()) >= 0) {
      const int64_t token = frame->pts;
      if (token >= 0 && token < n && !seen[static_cast<size_t>(token)]) {
        seen[static_cast<size_t>(token)] = true;
        order.push_back(static_cast<int32_t>(token));
      }
      av_frame_unref(frame.get());
    }
  };
  int32_t number;
  while (feeder.next(n - 1, pkt.get(), &number)) {
    while (avcodec_send_packet(codec.get(), pkt.get()) == AVERROR(EAGAIN)) drain();
    av_packet_unref(pkt.get());
    drain();
  }
  avcodec_send_packet(codec.get(), nullptr);
  drain();
  return order;
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
