#include "decode_limit.h"

#include <algorithm>
#include <chrono>

#include "codec_open.h"
#include "errors.h"
#include "ffmpeg_util.h"
#include "frame_converter.h"
#include "inband_state.h"
#include "packet_feeder.h"
#include "read_plan.h"

namespace vidlake {

double decode_limit(ByteSource& source, const PacketIndex& index, const std::vector<int32_t>& frames, int threads) {
  std::vector<int32_t> unique(frames);
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const std::vector<Span> spans = plan_spans(index, unique);
  if (!index.contiguous) throw ArgumentError(source.name() + ": decode_limit needs a contiguous container");
  // Packets into memory first (not timed).
  std::vector<PacketPtr> packets(index.packets.size());
  for (const Span& span : spans) {
    for (int32_t p = span.start; p <= span.end; ++p) {
      if (packets[static_cast<size_t>(p)]) continue;
      const PacketRecord& rec = index.packets[static_cast<size_t>(p)];
      PacketPtr pkt = make_packet();
      if (av_new_packet(pkt.get(), rec.size) < 0) throw DecodeError("out of memory");
      source.read_at(rec.offset, pkt->data, rec.size);
      pkt->pts = p;
      pkt->dts = rec.dts;
      pkt->flags = static_cast<int>(rec.flags & kDecoderPacketFlags);
      packets[static_cast<size_t>(p)] = std::move(pkt);
    }
  }
  CodecContextPtr codec = open_codec(index, threads, index.damaged, source.name());
  FramePtr frame = make_frame();
  PacketPtr work = make_packet();
  OutputLayout layout;
  layout.height = index.info.height;
  layout.width = index.info.width;
  std::vector<uint8_t> scratch(static_cast<size_t>(layout.frame_bytes()));
  FrameConverter converter;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Span& span : spans) {
    avcodec_flush_buffers(codec.get());
    size_t wanted_left = span.frames.size();
    auto take = [&]() {
      while (wanted_left > 0 && avcodec_receive_frame(codec.get(), frame.get()) >= 0) {
        const int64_t token = frame->pts;
        const int32_t f = (token >= 0 && token < static_cast<int64_t>(index.packets.size()))
                              ? index.packet_frame[static_cast<size_t>(token)] : -1;
        if (f >= 0 && std::binary_search(span.frames.begin(), span.frames.end(), f)) {
          converter.convert(frame.get(), layout, scratch.data());
          --wanted_left;
        }
        av_frame_unref(frame.get());
      }
    };
    const std::string prefix = replay_prefix(index, span.start);  // Note [Replayed in-band state]
    for (int32_t p = span.start; p <= span.end && wanted_left > 0; ++p) {
      av_packet_ref(work.get(), packets[static_cast<size_t>(p)].get());
      if (p == span.start && !prefix.empty()) prepend(work.get(), prefix, source.name());
      while (avcodec_send_packet(codec.get(), work.get()) == AVERROR(EAGAIN)) take();
      av_packet_unref(work.get());
      take();
    }
    if (wanted_left > 0) {
      avcodec_send_packet(codec.get(), nullptr);
      take();
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace vidlake
