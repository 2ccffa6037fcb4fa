#include "codec_open.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "errors.h"

extern "C" {
#include <libavutil/opt.h>
}

namespace vidlake {

int default_threads() {
  unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::min(16u, std::max(1u, hw)));
}

CodecContextPtr open_codec(const PacketIndex& index, int threads, bool slice_only, const std::string& name,
                           int flags) {
  const StreamInfo& s = index.info;
  const AVCodec* codec = avcodec_find_decoder(static_cast<AVCodecID>(s.codec_id));
  if (codec == nullptr) {
    throw UnsupportedError(name + ": this FFmpeg has no decoder for codec '" +
                           avcodec_get_name(static_cast<AVCodecID>(s.codec_id)) + "'");
  }
  CodecParametersPtr par(avcodec_parameters_alloc());
  par->codec_type = AVMEDIA_TYPE_VIDEO;
  par->codec_id = static_cast<AVCodecID>(s.codec_id);
  par->codec_tag = s.codec_tag;
  if (!s.extradata.empty()) {
    par->extradata = static_cast<uint8_t*>(av_mallocz(s.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    if (par->extradata == nullptr) throw DecodeError(name + ": out of memory");
    std::memcpy(par->extradata, s.extradata.data(), s.extradata.size());
    par->extradata_size = static_cast<int>(s.extradata.size());
  }
  par->width = s.width;
  par->height = s.height;
  par->format = s.pix_fmt;
  par->profile = s.profile;
  par->level = s.level;
  par->bits_per_coded_sample = s.bits_per_coded_sample;
  par->bits_per_raw_sample = s.bits_per_raw_sample;
  par->color_range = static_cast<AVColorRange>(s.color_range);
  par->color_space = static_cast<AVColorSpace>(s.color_space);
  par->color_primaries = static_cast<AVColorPrimaries>(s.color_primaries);
  par->color_trc = static_cast<AVColorTransferCharacteristic>(s.color_trc);
  par->chroma_location = static_cast<AVChromaLocation>(s.chroma_location);
  par->field_order = static_cast<AVFieldOrder>(s.field_order);
  par->video_delay = s.video_delay;
  par->sample_aspect_ratio = AVRational{s.sar_num, s.sar_den};

  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) throw DecodeError(name + ": out of memory");
  if (s.codec_id == AV_CODEC_ID_H264 && index.inband.x264_build >= 0 && ctx->priv_data != nullptr) {
    // Note [Replayed in-band state]: the x264 version the first access unit's SEI
    // gives a sequential decode, for decoders that start after it.
    av_opt_set_int(ctx->priv_data, "x264_build", index.inband.x264_build, 0);
  }
  int ret = avcodec_parameters_to_context(ctx.get(), par.get());
  if (ret < 0) throw_ffmpeg_error(ret, name, "cannot configure the decoder");
  ctx->pkt_timebase = AVRational{s.tb_num, s.tb_den};
  ctx->flags |= flags;
  if (slice_only) {
    // Note [Damaged streams]: error concealment output depends on the thread
    // configuration (PyAV's own output differs between 1 and 2 slice threads);
    // the single-threaded sequential decode is the only stable reference.
    ctx->thread_count = 1;
  } else {
    ctx->thread_count = threads > 0 ? threads : default_threads();
    ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  }
  ret = avcodec_open2(ctx.get(), codec, nullptr);
  if (ret < 0) throw_ffmpeg_error(ret, name, std::string("cannot open the ") + codec->name + " decoder");
  return ctx;
}
}  // namespace vidlake
