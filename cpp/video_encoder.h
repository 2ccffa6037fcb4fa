// The encoder: RGB24 frames -> libswscale -> libavcodec -> libavformat muxer, into a file or into
// memory. Policy (codec names, defaults, profiles) lives in python/vidlake/video/encode.py; this
// class does what its options say and nothing else. Not thread-safe: one writer per encoder.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ffmpeg_util.h"

namespace vidlake {

// Cannot set up an encoder or muxer, or libavcodec refused a frame; message names the
// destination and FFmpeg's reason.
class EncodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An output AVFormatContext: its AVIOContext is closed first (files with avio_closep; memory
// output's is owned elsewhere), then the context freed. (ffmpeg_util.h's FormatContextPtr is
// for demuxers: avformat_close_input.)
struct OutputContextFreer {
  bool owns_io = true;
  void operator()(AVFormatContext* ctx) const {
    if (ctx == nullptr) return;
    if (owns_io && ctx->pb != nullptr && !(ctx->oformat->flags & AVFMT_NOFILE)) avio_closep(&ctx->pb);
    avformat_free_context(ctx);
  }
};
using OutputContextPtr = std::unique_ptr<AVFormatContext, OutputContextFreer>;

struct EncoderOptions {
  std::string encoder;        // FFmpeg encoder name: libx264, libsvtav1, ffv1, ...
  std::string muxer;          // FFmpeg muxer name: mp4, matroska, webm
  std::string pix_fmt;        // the codec's pixel format: yuv420p, yuv444p, gbrp, bgr0, ...
  int width = 0;
  int height = 0;
  int tb_num = 1;             // time base of the pts given to write()
  int tb_den = 30;
  int fps_num = 30;           // nominal frame rate (codec rate control, container hint)
  int fps_den = 1;
  int gop = -1;               // keyframe interval in frames; -1: the encoder's default
  int max_b_frames = -1;      // -1: the encoder's default
  int64_t bit_rate = 0;       // 0: none (crf / qp in codec_options instead)
  double qscale = 0;          // > 0: constant quantiser (mpeg2video, mpeg4, mjpeg), as ffmpeg -q:v
  int threads = 0;            // codec threads; 0: the encoder's automatic choice
  // Colour tags (AVCOL_* values) written on the codec context (so in the bitstream's VUI) and
  // the stream's parameters (container); also the matrix and range of the RGB -> YUV conversion.
  int color_space = AVCOL_SPC_UNSPECIFIED;
  int color_range = AVCOL_RANGE_UNSPECIFIED;
  int color_primaries = AVCOL_PRI_UNSPECIFIED;
  int color_trc = AVCOL_TRC_UNSPECIFIED;
  int sws_flags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP;
  std::map<std::string, std::string> codec_options;  // avcodec_open2 options (crf, preset, qp, ...)
  std::map<std::string, std::string> muxer_options;  // avformat_write_header options (movflags, ...)
};

struct EncoderStats {
  int64_t frames_in = 0;
  int64_t packets_out = 0;
  int64_t keyframes = 0;
  int64_t bytes_out = 0;  // bytes of encoded packets (not counting container overhead)
};

class VideoEncoder {
 public:
  // `path` empty: the container is written into memory (take_bytes() after finish()).
  // `name` names the destination in errors.
  VideoEncoder(const EncoderOptions& options, const std::string& path, const std::string& name);
  ~VideoEncoder();
  VideoEncoder(const VideoEncoder&) = delete;
  VideoEncoder& operator=(const VideoEncoder&) = delete;

  // Encodes n frames of height*width*3 RGB24 bytes each (rows packed) at `rgb`, with
  // presentation times pts[0..n) in the time base of the options (strictly increasing over
  // all calls) and durations dur[0..n) (same units; used for the packets' durations).
  void write(const uint8_t* rgb, int64_t n, const int64_t* pts, const int64_t* dur);
  // Flushes the encoder and writes the container trailer. Idempotent.
  void finish();
  // The container's bytes (memory output, after finish()); moves them out.
  std::string take_bytes();
  bool finished() const { return finished_; }
  const EncoderStats& stats() const { return stats_; }
  // What the encoder really uses (after open): its pixel format, gop, b-frames, time base.
  std::map<std::string, std::string> facts() const;

 private:
  void drain(bool flushing);
  void close_io();

  EncoderOptions opt_;
  std::string name_;
  std::string path_;
  OutputContextPtr fmt_;
  CodecContextPtr codec_;
  SwsContextPtr sws_;
  FramePtr frame_;
  PacketPtr packet_;
  AVStream* stream_ = nullptr;
  struct MemoryOut;
  std::unique_ptr<MemoryOut> memory_;
  IoContextPtr memory_io_;
  bool header_written_ = false;
  bool finished_ = false;
  int64_t last_pts_ = INT64_MIN;
  std::map<int64_t, int64_t> durations_;  // pts -> duration of frames sent, not yet out
  EncoderStats stats_;
  AVPixelFormat pix_fmt_ = AV_PIX_FMT_NONE;
  bool rgb_target_ = false;
};

}  // namespace vidlake
