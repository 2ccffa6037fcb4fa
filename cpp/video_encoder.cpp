#include "video_encoder.h"

#include <algorithm>
#include <cstring>

extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

namespace vidlake {

namespace {

[[noreturn]] void fail(int err, const std::string& name, const std::string& what) {
  throw EncodeError(name + ": " + what + ": " + av_error_text(err));
}

// AVDictionary owner for option lists handed to FFmpeg.
struct DictFreer {
  void operator()(AVDictionary* d) const { av_dict_free(&d); }
};

AVDictionary* make_dict(const std::map<std::string, std::string>& m) {
  AVDictionary* d = nullptr;
  for (const auto& kv : m) av_dict_set(&d, kv.first.c_str(), kv.second.c_str(), 0);
  return d;
}

// Options FFmpeg did not consume: a typo in a setting is an error, not silently ignored.
void refuse_leftovers(AVDictionary* left, const std::string& name, const std::string& what) {
  if (left == nullptr || av_dict_count(left) == 0) return;
  std::string keys;
  const AVDictionaryEntry* e = nullptr;
  while ((e = av_dict_get(left, "", e, AV_DICT_IGNORE_SUFFIX)) != nullptr) {
    if (!keys.empty()) keys += ", ";
    keys += e->key;
  }
  throw EncodeError(name + ": " + what + " does not know the option(s) " + keys);
}

}  // namespace

// Note [Memory output]: a growable byte string with a write position, so that muxers that seek
// back (mp4 rewrites the mdat size and writes moov at the end) work without a file.
struct VideoEncoder::MemoryOut {
  std::string data;
  int64_t pos = 0;

#if LIBAVFORMAT_VERSION_MAJOR >= 61
  static int write(void* opaque, const uint8_t* buf, int size) {
#else
  static int write(void* opaque, uint8_t* buf, int size) {
#endif
    auto* m = static_cast<MemoryOut*>(opaque);
    const size_t end = static_cast<size_t>(m->pos) + static_cast<size_t>(size);
    if (end > m->data.size()) m->data.resize(end);
    std::memcpy(&m->data[static_cast<size_t>(m->pos)], buf, static_cast<size_t>(size));
    m->pos = static_cast<int64_t>(end);
    return size;
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* m = static_cast<MemoryOut*>(opaque);
    const int64_t size = static_cast<int64_t>(m->data.size());
    if (whence & AVSEEK_SIZE) return size;
    int64_t target;
    switch (whence & ~AVSEEK_FORCE) {
      case SEEK_SET: target = offset; break;
      case SEEK_CUR: target = m->pos + offset; break;
      case SEEK_END: target = size + offset; break;
      default: return AVERROR(EINVAL);
    }
    if (target < 0) return AVERROR(EINVAL);
    m->pos = target;
    return target;
  }
};

VideoEncoder::VideoEncoder(const EncoderOptions& options, const std::string& path, const std::string& name)
    : opt_(options), name_(name.empty() ? (path.empty() ? std::string("<memory>") : path) : name), path_(path) {
  if (opt_.width <= 0 || opt_.height <= 0) throw EncodeError(name_ + ": frame size must be positive");
  if (opt_.tb_num <= 0 || opt_.tb_den <= 0 || opt_.fps_num <= 0 || opt_.fps_den <= 0) {
    throw EncodeError(name_ + ": time base and frame rate must be positive");
  }
  const AVCodec* codec = avcodec_find_encoder_by_name(opt_.encoder.c_str());
  if (codec == nullptr) throw EncodeError(name_ + ": FFmpeg has no encoder " + opt_.encoder);
  pix_fmt_ = av_get_pix_fmt(opt_.pix_fmt.c_str());
  if (pix_fmt_ == AV_PIX_FMT_NONE) throw EncodeError(name_ + ": unknown pixel format " + opt_.pix_fmt);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(pix_fmt_);
  rgb_target_ = (desc->flags & AV_PIX_FMT_FLAG_RGB) != 0;
  if (opt_.width % (1 << desc->log2_chroma_w) != 0 || opt_.height % (1 << desc->log2_chroma_h) != 0) {
    throw EncodeError(name_ + ": " + opt_.pix_fmt + " needs a width divisible by " +
                      std::to_string(1 << desc->log2_chroma_w) + " and a height divisible by " +
                      std::to_string(1 << desc->log2_chroma_h) + ", got " + std::to_string(opt_.width) + "x" +
                      std::to_string(opt_.height));
  }

  AVFormatContext* raw_fmt = nullptr;
  int err = avformat_alloc_output_context2(&raw_fmt, nullptr, opt_.muxer.c_str(), path_.empty() ? nullptr : path_.c_str());
  if (err < 0 || raw_fmt == nullptr) fail(err < 0 ? err : AVERROR_MUXER_NOT_FOUND, name_, "no muxer " + opt_.muxer);
  fmt_ = OutputContextPtr(raw_fmt, OutputContextFreer{!path_.empty()});
  if (avformat_query_codec(fmt_->oformat, codec->id, FF_COMPLIANCE_NORMAL) == 0) {
    throw EncodeError(name_ + ": the " + opt_.muxer + " container cannot hold " + avcodec_get_name(codec->id) +
                      " video; choose another container (mkv holds most codecs) or codec");
  }

  codec_.reset(avcodec_alloc_context3(codec));
  if (!codec_) throw EncodeError(name_ + ": out of memory");
  AVCodecContext* c = codec_.get();
  c->width = opt_.width;
  c->height = opt_.height;
  c->pix_fmt = pix_fmt_;
  c->time_base = AVRational{opt_.tb_num, opt_.tb_den};
  c->framerate = AVRational{opt_.fps_num, opt_.fps_den};
  c->sample_aspect_ratio = AVRational{1, 1};
  if (opt_.gop >= 0) c->gop_size = opt_.gop;
  if (opt_.max_b_frames >= 0) c->max_b_frames = opt_.max_b_frames;
  if (opt_.bit_rate > 0) c->bit_rate = opt_.bit_rate;
  c->thread_count = opt_.threads;
  if (opt_.qscale > 0) {
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = static_cast<int>(FF_QP2LAMBDA * opt_.qscale + 0.5);
  }
  c->color_range = static_cast<AVColorRange>(opt_.color_range);
  c->colorspace = static_cast<AVColorSpace>(opt_.color_space);
  c->color_primaries = static_cast<AVColorPrimaries>(opt_.color_primaries);
  c->color_trc = static_cast<AVColorTransferCharacteristic>(opt_.color_trc);
  if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

  std::unique_ptr<AVDictionary, DictFreer> copts(make_dict(opt_.codec_options));
  AVDictionary* copts_raw = copts.release();
  err = avcodec_open2(c, codec, &copts_raw);
  copts.reset(copts_raw);
  if (err < 0) fail(err, name_, "cannot open encoder " + opt_.encoder + " (" + opt_.pix_fmt + ")");
  refuse_leftovers(copts.get(), name_, "encoder " + opt_.encoder);

  stream_ = avformat_new_stream(fmt_.get(), nullptr);
  if (stream_ == nullptr) throw EncodeError(name_ + ": out of memory");
  stream_->time_base = c->time_base;
  stream_->avg_frame_rate = c->framerate;
  stream_->r_frame_rate = c->framerate;
  err = avcodec_parameters_from_context(stream_->codecpar, c);
  if (err < 0) fail(err, name_, "cannot set the stream's parameters");

  if (path_.empty()) {
    memory_ = std::make_unique<MemoryOut>();
    constexpr int kBuf = 1 << 16;
    auto* buf = static_cast<unsigned char*>(av_malloc(kBuf));
    if (buf == nullptr) throw EncodeError(name_ + ": out of memory");
    memory_io_.reset(avio_alloc_context(buf, kBuf, 1, memory_.get(), nullptr, &MemoryOut::write, &MemoryOut::seek));
    if (!memory_io_) {
      av_free(buf);
      throw EncodeError(name_ + ": out of memory");
    }
    fmt_->pb = memory_io_.get();
  } else if (!(fmt_->oformat->flags & AVFMT_NOFILE)) {
    err = avio_open(&fmt_->pb, path_.c_str(), AVIO_FLAG_WRITE);
    if (err < 0) fail(err, name_, "cannot open for writing");
  }
  std::unique_ptr<AVDictionary, DictFreer> mopts(make_dict(opt_.muxer_options));
  AVDictionary* mopts_raw = mopts.release();
  err = avformat_write_header(fmt_.get(), &mopts_raw);
  mopts.reset(mopts_raw);
  if (err < 0) fail(err, name_, "cannot write the " + opt_.muxer + " header");
  header_written_ = true;
  refuse_leftovers(mopts.get(), name_, "muxer " + opt_.muxer);

  frame_ = make_frame();
  packet_ = make_packet();
  if (!frame_ || !packet_) throw EncodeError(name_ + ": out of memory");
  frame_->format = pix_fmt_;
  frame_->width = opt_.width;
  frame_->height = opt_.height;
  frame_->color_range = c->color_range;
  frame_->colorspace = c->colorspace;
  frame_->color_primaries = c->color_primaries;
  frame_->color_trc = c->color_trc;

  sws_.reset(sws_getContext(opt_.width, opt_.height, AV_PIX_FMT_RGB24, opt_.width, opt_.height, pix_fmt_,
                            opt_.sws_flags, nullptr, nullptr, nullptr));
  if (!sws_) throw EncodeError(name_ + ": cannot convert rgb24 to " + opt_.pix_fmt);
  if (!rgb_target_) {
    // RGB (full range) -> YUV with the matrix and range the stream is tagged with, so that a
    // reader converting with the stream's own tags (vidlake's default) inverts this conversion.
    int *inv_table = nullptr, *table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    sws_getColorspaceDetails(sws_.get(), &inv_table, &src_range, &table, &dst_range, &brightness, &contrast,
                             &saturation);
    const int* coeffs = table;
    if (opt_.color_space != AVCOL_SPC_UNSPECIFIED) coeffs = sws_getCoefficients(opt_.color_space);
    const int full = opt_.color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    sws_setColorspaceDetails(sws_.get(), inv_table, 1, coeffs, full, brightness, contrast, saturation);
  }
}

VideoEncoder::~VideoEncoder() = default;

void VideoEncoder::write(const uint8_t* rgb, int64_t n, const int64_t* pts, const int64_t* dur) {
  if (finished_) throw EncodeError(name_ + ": the writer is closed");
  const int64_t frame_bytes = static_cast<int64_t>(opt_.width) * opt_.height * 3;
  for (int64_t i = 0; i < n; ++i) {
    if (pts[i] <= last_pts_) {
      throw EncodeError(name_ + ": timestamps must increase: frame " + std::to_string(stats_.frames_in) +
                        " has pts " + std::to_string(pts[i]) + " after " + std::to_string(last_pts_));
    }
    // The encoder may still hold references to the previous frame's buffers: take new ones then.
    int err = 0;
    if (frame_->buf[0] == nullptr || !av_frame_is_writable(frame_.get())) {
      av_frame_unref(frame_.get());
      frame_->format = pix_fmt_;
      frame_->width = opt_.width;
      frame_->height = opt_.height;
      frame_->color_range = codec_->color_range;
      frame_->colorspace = codec_->colorspace;
      frame_->color_primaries = codec_->color_primaries;
      frame_->color_trc = codec_->color_trc;
      err = av_frame_get_buffer(frame_.get(), 0);
      if (err < 0) fail(err, name_, "cannot allocate a frame");
    }
    const uint8_t* src[4] = {rgb + i * frame_bytes, nullptr, nullptr, nullptr};
    const int src_stride[4] = {opt_.width * 3, 0, 0, 0};
    sws_scale(sws_.get(), src, src_stride, 0, opt_.height, frame_->data, frame_->linesize);
    frame_->pts = pts[i];
    if (opt_.qscale > 0) frame_->quality = codec_->global_quality;
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(58, 2, 100)
    frame_->duration = dur[i];
#else
    frame_->pkt_duration = dur[i];
#endif
    // Let the encoder decide frame types (no forced keyframes beyond its gop).
    frame_->pict_type = AV_PICTURE_TYPE_NONE;
    durations_[pts[i]] = dur[i];
    last_pts_ = pts[i];
    err = avcodec_send_frame(codec_.get(), frame_.get());
    if (err < 0) fail(err, name_, "encoder " + opt_.encoder + " refused frame " + std::to_string(stats_.frames_in));
    ++stats_.frames_in;
    drain(false);
  }
}

void VideoEncoder::drain(bool flushing) {
  for (;;) {
    int err = avcodec_receive_packet(codec_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    if (err < 0) fail(err, name_, std::string("encoder ") + opt_.encoder + (flushing ? " (flush)" : ""));
    auto d = durations_.find(packet_->pts);
    if (d != durations_.end()) {
      if (packet_->duration <= 0) packet_->duration = d->second;
      durations_.erase(d);
    }
    ++stats_.packets_out;
    if (packet_->flags & AV_PKT_FLAG_KEY) ++stats_.keyframes;
    stats_.bytes_out += packet_->size;
    packet_->stream_index = stream_->index;
    av_packet_rescale_ts(packet_.get(), codec_->time_base, stream_->time_base);
    err = av_interleaved_write_frame(fmt_.get(), packet_.get());  // takes the packet's reference
    if (err < 0) fail(err, name_, "cannot write a packet");
  }
}

void VideoEncoder::finish() {
  if (finished_) return;
  finished_ = true;
  int err = avcodec_send_frame(codec_.get(), nullptr);
  if (err < 0 && err != AVERROR_EOF) fail(err, name_, "cannot flush encoder " + opt_.encoder);
  drain(true);
  err = av_write_trailer(fmt_.get());
  if (err < 0) fail(err, name_, "cannot write the " + opt_.muxer + " trailer");
  if (fmt_->pb != nullptr) avio_flush(fmt_->pb);
  close_io();
}

void VideoEncoder::close_io() {
  if (!path_.empty() && fmt_ && fmt_->pb != nullptr && !(fmt_->oformat->flags & AVFMT_NOFILE)) {
    int err = avio_closep(&fmt_->pb);
    if (err < 0) fail(err, name_, "cannot close the file");
  }
}

std::string VideoEncoder::take_bytes() {
  if (!memory_) throw EncodeError(name_ + ": written to a file, not to memory");
  if (!finished_) throw EncodeError(name_ + ": not finished");
  std::string out;
  out.swap(memory_->data);
  return out;
}

std::map<std::string, std::string> VideoEncoder::facts() const {
  const AVCodecContext* c = codec_.get();
  std::map<std::string, std::string> f;
  f["encoder"] = opt_.encoder;
  f["codec"] = avcodec_get_name(c->codec_id);
  f["pix_fmt"] = av_get_pix_fmt_name(c->pix_fmt) ?: "unknown";
  f["gop"] = std::to_string(c->gop_size);
  f["max_b_frames"] = std::to_string(c->max_b_frames);
  f["muxer"] = opt_.muxer;
  f["stream_time_base"] = std::to_string(stream_->time_base.num) + "/" + std::to_string(stream_->time_base.den);
  f["color_space"] = av_color_space_name(c->colorspace) ?: "unknown";
  f["color_range"] = av_color_range_name(c->color_range) ?: "unknown";
  f["color_primaries"] = av_color_primaries_name(c->color_primaries) ?: "unknown";
  f["color_transfer"] = av_color_transfer_name(c->color_trc) ?: "unknown";
  return f;
}

}  // namespace vidlake
