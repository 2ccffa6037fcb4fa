#include "image_decoder.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "demuxer.h"
#include "errors.h"
#include "ffmpeg_util.h"
#include "frame_converter.h"

namespace vidlake {

DecodedPicture::DecodedPicture(ByteSource& source) {
  if (source.size() == 0) throw DecodeError(source.name() + ": empty file (0 bytes), not an image");
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
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame_->format));
  if (d == nullptr) return 3;
  if (d->flags & AV_PIX_FMT_FLAG_ALPHA) return 4;
  if (d->nb_components == 1 && !(d->flags & AV_PIX_FMT_FLAG_PAL)) return 1;
  return 3;
}

void DecodedPicture::convert(int channels, uint8_t* out) const {
  OutputLayout layout;
  layout.width = width();
  layout.height = height();
  layout.gray = channels == 1;
  layout.alpha = channels == 4;
  FrameConverter converter;
  converter.convert(frame_.get(), layout, out);
}

}  // namespace vidlake
