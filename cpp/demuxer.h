// libavformat reading through a ByteSource (custom AVIO), used to build the
// index and, for containers whose packets are not stored as contiguous bytes
// (MPEG-TS/PS, raw streams, laced Matroska), to read packets at decode time.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "byte_source.h"
#include "ffmpeg_util.h"

namespace vidlake {

class SourceDemuxer {
 public:
  // Opens and probes the source; throws DecodeError naming it on failure.
  // keep_recent: remember recently read bytes so locate() needs no second read.
  // allow_probe = false: never run avformat_find_stream_info (it decodes payload);
  // needs_probe() then says whether the header alone was not enough.
  SourceDemuxer(ByteSource& source, bool keep_recent, bool allow_probe = true);
  ~SourceDemuxer();
  SourceDemuxer(const SourceDemuxer&) = delete;
  SourceDemuxer& operator=(const SourceDemuxer&) = delete;

  AVFormatContext* context() const { return format_.get(); }
  // False when avformat_find_stream_info was skipped (Note [Skipping find_stream_info]).
  bool probed() const { return probed_; }
  bool needs_probe() const { return needs_probe_; }
  // av_read_frame; returns its result (AVERROR_EOF at the end).
  int read(AVPacket* packet);
  // Seeks so that the next packets come from byte `pos` on; false if unsupported.
  bool seek_to_byte(int64_t pos, int stream_index);
  // Finds the offset of `data` in the source within [hint, hint + window]; -1 if absent.
  int64_t locate(int64_t hint, const uint8_t* data, int64_t size, int64_t window);

 private:
  static bool header_is_complete(const AVFormatContext* ctx);
  static const AVInputFormat* known_format(ByteSource& source);
  static int read_callback(void* opaque, uint8_t* buf, int size);
  static int64_t seek_callback(void* opaque, int64_t offset, int whence);
  bool recent_match(int64_t offset, const uint8_t* data, int64_t size) const;

  ByteSource& source_;
  int64_t position_ = 0;
  bool keep_recent_;
  std::deque<std::pair<int64_t, std::string>> recent_;
  int64_t recent_bytes_ = 0;
  bool probed_ = true;
  bool needs_probe_ = false;
  IoContextPtr io_;          // declared before format_: destroyed after it
  FormatContextPtr format_;
};

}  // namespace vidlake
