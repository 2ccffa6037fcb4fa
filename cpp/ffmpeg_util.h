// RAII owners for every FFmpeg object the core uses. No raw av_*_free outside this file.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

namespace vidlake {

struct FormatContextCloser {
  void operator()(AVFormatContext* ctx) const { avformat_close_input(&ctx); }
};
struct CodecContextFreer {
  void operator()(AVCodecContext* ctx) const { avcodec_free_context(&ctx); }
};
struct FrameFreer {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketFreer {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct SwsContextFreer {
  void operator()(SwsContext* ctx) const { sws_freeContext(ctx); }
};
struct CodecParametersFreer {
  void operator()(AVCodecParameters* par) const { avcodec_parameters_free(&par); }
};
// An AVIOContext owns its buffer only through av_free; free both.
struct IoContextFreer {
  void operator()(AVIOContext* io) const {
    if (io != nullptr) {
      av_freep(&io->buffer);
    }
    avio_context_free(&io);
  }
};

using FormatContextPtr = std::unique_ptr<AVFormatContext, FormatContextCloser>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsContextPtr = std::unique_ptr<SwsContext, SwsContextFreer>;
using CodecParametersPtr = std::unique_ptr<AVCodecParameters, CodecParametersFreer>;
using IoContextPtr = std::unique_ptr<AVIOContext, IoContextFreer>;

// Note [Enum fields from FFmpeg]: an FFmpeg enum field can hold a number no
// enumerator of that enum has. MPEG-2's and MPEG-4's decoders copy the
// colour bytes of a sequence header unchecked into AVCodecContext (a fuzzed
// file gave colorspace 200, which then reached AVCodecParameters), and a
// newer FFmpeg's enumerators are unknown to the headers built against.
// Loading such a value as the enum type is undefined behaviour in C++
// (UBSan: "not a valid value for type 'enum AVColorSpace'"), so the core
// reads these fields as the int they are stored as.
template <class E>
int enum_value(const E& field) {
  static_assert(std::is_enum_v<E> && sizeof(E) == sizeof(int), "an FFmpeg enum stored as an int");
  int v = 0;
  std::memcpy(&v, &field, sizeof v);
  return v;
}

inline FramePtr make_frame() { return FramePtr(av_frame_alloc()); }
inline PacketPtr make_packet() { return PacketPtr(av_packet_alloc()); }

// FFmpeg's own text for an error code.
inline std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

}  // namespace vidlake
