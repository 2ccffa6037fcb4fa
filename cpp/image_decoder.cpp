#include "image_decoder.h"

#include <vector>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "demuxer.h"
#include "errors.h"
#include "ffmpeg_util.h"
#include "frame_converter.h"

namespace vidlake {

namespace {

std::vector<uint8_t> read_all(ByteSource& source) {
  std::vector<uint8_t> data(static_cast<size_t>(source.size()));
  int64_t got = 0;
  while (got < source.size()) {
    const int64_t n = source.read_at(got, data.data() + got, source.size() - got);
    if (n <= 0) break;
    got += n;
  }
  data.resize(static_cast<size_t>(got));
  return data;
}

}  // namespace

DecodedPicture::DecodedPicture(ByteSource& source, ImageDecoder decoder) {
  if (source.size() == 0) throw DecodeError(source.name() + ": empty file (0 bytes), not an image");
  if (decoder == ImageDecoder::libjpeg_turbo) {
    uint8_t head[3] = {0, 0, 0};
    const int64_t n = source.read_at(0, head, 3);
    if (looks_like_jpeg(head, n)) {
      jpeg_ = JpegPicture::open(read_all(source), source.name());
      if (jpeg_) return;  // else a JPEG process libjpeg-turbo lacks (lossless, 12-bit): libavcodec
    }
  }
  decode_with_ffmpeg(source);
}

void DecodedPicture::decode_with_ffmpeg(ByteSource& source) {
  SourceDemuxer demuxer(source, false);
  AVFormatContext* fmt = demuxer.context();
  const int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (best < 0) throw UnsupportedError(source.name() + ": has no picture");
  const AVCodecParameters* par = fmt->streams[best]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (codec == nullptr) throw UnsupportedError(source.name() + ": no decoder for codec " + avcodec_get_name(par->codec_id));
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) throw DecodeError(source.name() + ": out of memory");
  int ret = avcodec_parameters_to_context(ctx.get(), par);
  if (ret < 0) throw_ffmpeg_error(ret, source.name(), "cannot configure the decoder");
  ctx->thread_count = 1;
  ret = avcodec_open2(ctx.get(), codec, nullptr);
  if (ret < 0) throw_ffmpeg_error(ret, source.name(), "cannot open the image decoder");
  PacketPtr pkt = make_packet();
  while ((ret = demuxer.read(pkt.get())) >= 0) {
    if (pkt->stream_index != best) {
      av_packet_unref(pkt.get());
      continue;
    }
    ret = avcodec_send_packet(ctx.get(), pkt.get());
    av_packet_unref(pkt.get());
    if (ret < 0) throw_ffmpeg_error(ret, source.name(), "cannot decode the image");
    break;
  }
  avcodec_send_packet(ctx.get(), nullptr);
  ret = avcodec_receive_frame(ctx.get(), frame_.get());
  if (ret < 0) throw_ffmpeg_error(ret, source.name(), "the image decodes to no picture");
}

int DecodedPicture::natural_channels() const {
  if (jpeg_) return jpeg_->natural_channels();
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame_->format));
  if (d == nullptr) return 3;
  if (d->flags & AV_PIX_FMT_FLAG_ALPHA) return 4;
  if (d->nb_components == 1 && !(d->flags & AV_PIX_FMT_FLAG_PAL)) return 1;
  return 3;
}

void DecodedPicture::convert(int channels, uint8_t* out) {
  if (jpeg_) {
    jpeg_->decode(channels, out);
    return;
  }
  OutputLayout layout;
  layout.width = width();
  layout.height = height();
  layout.gray = channels == 1;
  layout.alpha = channels == 4;
  FrameConverter converter;
  converter.convert(frame_.get(), layout, out);
}

}  // namespace vidlake
