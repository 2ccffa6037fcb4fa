#include "index_validate.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

namespace vidlake {

namespace {

// Note [Trusted codecs]
// codec_id picks the libavcodec decoder that parses every packet, so it decides
// which decoder an attacker gets to feed. Only video codecs that real containers
// carry are accepted, all of them decoders FFmpeg fuzzes itself. Outside this
// list are still-image codecs (a jpegxl id over H.264 packets spins forever in
// libjxl), pseudo-codecs whose "packets" are pointers (wrapped_avframe) and
// hundreds of rare game and screen codecs nobody stores in a dataset. A video of
// another codec can still be read from its file (VideoReader(path) builds its
// index itself); only a stored index of it is refused.
constexpr AVCodecID kAllowedCodecs[] = {
    AV_CODEC_ID_H264,       AV_CODEC_ID_HEVC,     AV_CODEC_ID_AV1,        AV_CODEC_ID_VP8,
    AV_CODEC_ID_VP9,        AV_CODEC_ID_VP6,      AV_CODEC_ID_VP6F,       AV_CODEC_ID_VP6A,
    AV_CODEC_ID_MPEG1VIDEO, AV_CODEC_ID_MPEG2VIDEO, AV_CODEC_ID_MPEG4,    AV_CODEC_ID_H263,
    AV_CODEC_ID_H263P,      AV_CODEC_ID_H261,     AV_CODEC_ID_MSMPEG4V1,  AV_CODEC_ID_MSMPEG4V2,
    AV_CODEC_ID_MSMPEG4V3,  AV_CODEC_ID_WMV1,     AV_CODEC_ID_WMV2,       AV_CODEC_ID_WMV3,
    AV_CODEC_ID_VC1,        AV_CODEC_ID_FLV1,     AV_CODEC_ID_MJPEG,      AV_CODEC_ID_THEORA,
    AV_CODEC_ID_PRORES,     AV_CODEC_ID_DNXHD,    AV_CODEC_ID_FFV1,       AV_CODEC_ID_HUFFYUV,
    AV_CODEC_ID_FFVHUFF,    AV_CODEC_ID_UTVIDEO,  AV_CODEC_ID_DVVIDEO,    AV_CODEC_ID_RAWVIDEO,
    AV_CODEC_ID_PNG,        AV_CODEC_ID_QTRLE,    AV_CODEC_ID_CINEPAK,    AV_CODEC_ID_SVQ1,
    AV_CODEC_ID_SVQ3,       AV_CODEC_ID_CAVS,     AV_CODEC_ID_DIRAC,      AV_CODEC_ID_MAGICYUV,
};

// Codecs of the MPEG-1/2/4, H.263 and MJPEG family: 8 bits per sample unless
// the bitstream says otherwise (their decoders read bits_per_raw_sample > 8 as
// "16-bit pixels" and then overrun 8-bit buffers: 255 on MPEG-2 corrupts the heap).
bool eight_bit_family(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_MPEG1VIDEO: case AV_CODEC_ID_MPEG2VIDEO: case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_H263: case AV_CODEC_ID_H263P: case AV_CODEC_ID_H261:
    case AV_CODEC_ID_MSMPEG4V1: case AV_CODEC_ID_MSMPEG4V2: case AV_CODEC_ID_MSMPEG4V3:
    case AV_CODEC_ID_WMV1: case AV_CODEC_ID_WMV2: case AV_CODEC_ID_FLV1:
    case AV_CODEC_ID_CAVS: case AV_CODEC_ID_WMV3: case AV_CODEC_ID_VC1:
      return true;
    default:
      return false;
  }
}

constexpr const char* kRefusedField = "packet index field ";
constexpr const char* kRefusedWhy = " (damaged or crafted index)";

[[noreturn]] void refuse(const std::string& field, const std::string& why) {
  throw IndexFormatError(kRefusedField + ("'" + field + "' ") + why + kRefusedWhy);
}

void check_range(const std::string& field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    refuse(field, "is " + std::to_string(v) + ", outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
}

// An int64 that is AV_NOPTS_VALUE / INT64_MIN ("unknown") or within +-kIndexMaxValue.
void check_time(const std::string& field, int64_t v, int64_t unknown) {
  if (v != unknown) check_range(field, v, -kIndexMaxValue, kIndexMaxValue);
}

void check_stream_values(const StreamInfo& s);

void check_stream_info(const StreamInfo& s) {
  if (!index_codec_allowed(s.codec_id)) {
    const AVCodecDescriptor* d = avcodec_descriptor_get(static_cast<AVCodecID>(s.codec_id));
    refuse("codec_id", "is " + std::to_string(s.codec_id) + (d ? std::string(" (") + d->name + ")" : std::string()) +
                           ", not a video codec vidlake reads from a stored index");
  }
  check_stream_values(s);
}

// Every stream field but the codec (a file of another codec is still read from the file).
void check_stream_values(const StreamInfo& s) {
  const AVCodecID id = static_cast<AVCodecID>(s.codec_id);
  check_range("num_streams", s.num_streams, 1, 65536);
  check_range("stream_index", s.stream_index, 0, s.num_streams - 1);
  // 0 x 0: the container did not say (the decoder finds out); else a real size.
  check_range("width", s.width, 0, kIndexMaxSide);
  check_range("height", s.height, 0, kIndexMaxSide);
  if ((s.width == 0) != (s.height == 0)) refuse("width", "and 'height' must both be known or both 0");
  if (s.width > 0 && av_image_check_size(static_cast<unsigned>(s.width), static_cast<unsigned>(s.height), 0, nullptr) < 0) {
    refuse("width", "x 'height' " + std::to_string(s.width) + "x" + std::to_string(s.height) + " is not a valid frame size");
  }
  if (s.pix_fmt != -1) {
    const AVPixFmtDescriptor* pd = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(s.pix_fmt));
    if (pd == nullptr) refuse("pix_fmt", "is " + std::to_string(s.pix_fmt) + ", not a pixel format of this FFmpeg");
    if ((pd->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) != 0) {
      refuse("pix_fmt", std::string("is ") + pd->name + ", not a software pixel format");
    }
  }
  // FF_PROFILE_UNKNOWN / FF_LEVEL_UNKNOWN are -99; H.264 profiles carry
  // constraint flags up to bit 11.
  check_range("profile", s.profile, FF_PROFILE_UNKNOWN, 0xffff);
  check_range("level", s.level, FF_LEVEL_UNKNOWN, 0xffff);
  check_range("bits_per_coded_sample", s.bits_per_coded_sample, 0, 64);
  if (eight_bit_family(id)) {
    if (s.bits_per_raw_sample != 0 && s.bits_per_raw_sample != 8) {
      refuse("bits_per_raw_sample", "is " + std::to_string(s.bits_per_raw_sample) + "; " +
                                        avcodec_get_name(id) + " streams have 0 (unknown) or 8");
    }
  } else {
    check_range("bits_per_raw_sample", s.bits_per_raw_sample, 0, 16);
  }
  check_range("color_range", s.color_range, 0, AVCOL_RANGE_NB - 1);
  if (av_color_space_name(static_cast<AVColorSpace>(s.color_space)) == nullptr) {
    refuse("color_space", "is " + std::to_string(s.color_space) + ", not a colour space of this FFmpeg");
  }
  if (av_color_primaries_name(static_cast<AVColorPrimaries>(s.color_primaries)) == nullptr) {
    refuse("color_primaries", "is " + std::to_string(s.color_primaries) + ", not a value of this FFmpeg");
  }
  if (av_color_transfer_name(static_cast<AVColorTransferCharacteristic>(s.color_trc)) == nullptr) {
    refuse("color_trc", "is " + std::to_string(s.color_trc) + ", not a value of this FFmpeg");
  }
  check_range("chroma_location", s.chroma_location, 0, AVCHROMA_LOC_NB - 1);
  check_range("field_order", s.field_order, AV_FIELD_UNKNOWN, AV_FIELD_BT);
  // H.264 keeps at most 16 delayed pictures (MAX_DELAYED_PIC_COUNT) and asserts it.
  check_range("video_delay", s.video_delay, 0, 16);
  check_range("sar_num", s.sar_num, 0, INT32_MAX);
  check_range("sar_den", s.sar_den, 0, INT32_MAX);
  check_range("tb_num", s.tb_num, 1, INT32_MAX);
  check_range("tb_den", s.tb_den, 1, INT32_MAX);
  check_range("avg_fps_num", s.avg_fps_num, 0, INT32_MAX);
  check_range("avg_fps_den", s.avg_fps_den, 0, INT32_MAX);
  check_range("r_fps_num", s.r_fps_num, 0, INT32_MAX);
  check_range("r_fps_den", s.r_fps_den, 0, INT32_MAX);
  if (!std::isfinite(s.rotation) || std::fabs(s.rotation) > 360.0) refuse("rotation", "is not an angle in [-360, 360]");
  check_time("start_time", s.start_time, INT64_MIN);
  if (s.duration != INT64_MIN) check_range("duration", s.duration, 0, kIndexMaxValue);
  check_range("source_size", s.source_size, 1, kIndexMaxValue);
  // extradata_size is an int and gets AV_INPUT_BUFFER_PADDING_SIZE more.
  check_range("extradata", static_cast<int64_t>(s.extradata.size()), 0, 1 << 26);
  // A demuxer name ("mov,mp4,m4a,3gp,3g2,mj2"): short printable ASCII, so it is
  // valid UTF-8 wherever it is shown.
  if (s.container.size() > 256) refuse("container", "is longer than 256 bytes");
  for (unsigned char c : s.container) {
    if (c < 0x20 || c > 0x7e) refuse("container", "holds a byte that is not printable ASCII");
  }
}

}  // namespace

void check_built_stream(const StreamInfo& info, const std::string& source_name) {
  // The loader refuses larger frames: so does the builder, by name, rather than build an index
  // no dataset could load again (a Matroska PixelHeight of 16432 did).
  if (info.width < 0 || info.height < 0 || info.width > kIndexMaxSide || info.height > kIndexMaxSide) {
    throw UnsupportedError(source_name + ": the container gives the video a frame size of " +
                           std::to_string(info.width) + "x" + std::to_string(info.height) +
                           ", larger than vidlake reads (at most " + std::to_string(kIndexMaxSide) + " x " +
                           std::to_string(kIndexMaxSide) + ")");
  }
  try {
    check_stream_values(info);
  } catch (const IndexFormatError& e) {
    std::string why = e.what();  // kRefusedField 'name' ... kRefusedWhy
    const std::string prefix = kRefusedField, suffix = kRefusedWhy;
    if (why.compare(0, prefix.size(), prefix) == 0) why.erase(0, prefix.size());
    if (why.size() >= suffix.size() && why.compare(why.size() - suffix.size(), suffix.size(), suffix) == 0) {
      why.resize(why.size() - suffix.size());
    }
    throw UnsupportedError(source_name + ": the container describes the video stream with a value vidlake does " +
                           "not index (stream field " + why + ")");
  }
}

bool index_codec_allowed(int32_t codec_id) {
  for (AVCodecID id : kAllowedCodecs) {
    if (static_cast<int32_t>(id) == codec_id) return true;
  }
  return false;
}

void validate_index(const PacketIndex& idx) {
  check_stream_info(idx.info);
  const int64_t source_size = idx.info.source_size;
  const size_t n = idx.packets.size();
  if (n == 0) refuse("packets", "is empty (an index has at least one packet)");
  if (n > static_cast<size_t>(INT32_MAX)) refuse("packets", "has more than 2^31 entries");
  for (size_t p = 0; p < n; ++p) {
    const PacketRecord& r = idx.packets[p];
    const std::string at = "packets[" + std::to_string(p) + "].";
    check_time(at + "pts", r.pts, AV_NOPTS_VALUE);
    check_time(at + "dts", r.dts, AV_NOPTS_VALUE);
    check_range(at + "duration", r.duration, -kIndexMaxValue, kIndexMaxValue);
    // av_new_packet takes an int and adds padding.
    check_range(at + "size", r.size, 0, std::min<int64_t>(source_size, INT32_MAX - 1024));
    if (idx.contiguous) {
      check_range(at + "offset", r.offset, 0, source_size - r.size);
    } else {
      check_range(at + "offset", r.offset, -1, source_size - 1);  // the demuxer's pos; -1: unknown
    }
  }
  const size_t nf = idx.frame_packet.size();
  if (nf == 0) refuse("frames", "is empty (an index has at least one frame)");
  if (nf > n) refuse("frames", "has more entries than there are packets");
  if (idx.frame_pts.size() != nf) refuse("frame_pts", "does not have one entry per frame");
  std::vector<bool> used(n, false);
  for (size_t f = 0; f < nf; ++f) {
    const std::string at = "frames[" + std::to_string(f) + "].";
    const int32_t p = idx.frame_packet[f];
    check_range(at + "packet", p, 0, static_cast<int64_t>(n) - 1);
    if (used[static_cast<size_t>(p)]) refuse(at + "packet", "names packet " + std::to_string(p) + " a second time");
    used[static_cast<size_t>(p)] = true;
    const int64_t pts = idx.frame_pts[f];
    check_range(at + "pts", pts, -kIndexMaxValue, kIndexMaxValue);
    // Frames are numbered in presentation order: timestamps strictly increase.
    if (f > 0 && pts <= idx.frame_pts[f - 1]) refuse(at + "pts", "does not follow the previous frame's");
    const PacketRecord& r = idx.packets[static_cast<size_t>(p)];
    if (idx.pts_from_container && r.pts != AV_NOPTS_VALUE && r.pts != pts) {
      refuse(at + "pts", "differs from its packet's pts");
    }
  }
}

void check_index_fits(const PacketIndex& idx, int64_t source_size, const std::string& source_name) {
  if (!idx.contiguous) return;  // packets come from the demuxer, which checks its own reads
  int64_t end = 0;
  for (const PacketRecord& r : idx.packets) end = std::max(end, r.offset + r.size);
  if (end > source_size) {
    throw IndexFormatError(source_name + ": the packet index names bytes up to " + std::to_string(end) +
                           " but the source holds " + std::to_string(source_size) +
                           " (index of another file, or the file was truncated or changed)");
  }
}

}  // namespace vidlake
