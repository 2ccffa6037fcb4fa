#include "index_builder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

extern "C" {
#include <libavutil/display.h>
}

#include "demuxer.h"
#include "mkv_layout.h"
#include "mp4_layout.h"
#include "errors.h"
#include "ffmpeg_log.h"
#include "ffmpeg_util.h"
#include "frame_filter.h"
#include "h264_sps.h"
#include "index_validate.h"
#include "inband_state.h"
#include "decode_order.h"

namespace vidlake {

namespace {

// How far past the demuxer's pos a payload may start (container framing:
// AVI chunk header 8, IVF frame header 12, FLV tag 16, Matroska block ~12).
constexpr int64_t kPayloadWindow = 64;

double display_rotation(const AVStream* st) {
  const uint8_t* matrix = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  const AVPacketSideData* sd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                       st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  if (sd != nullptr && sd->size >= 9 * 4) matrix = sd->data;
#else
  size_t size = 0;
  matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (size < 9 * 4) matrix = nullptr;
#endif
  if (matrix == nullptr) return 0.0;
  double r = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  return std::isnan(r) ? 0.0 : r;
}

// The loader keeps timestamps and durations within +-2^53 (index_validate.cpp): a container
// whose timestamps leave that range is refused by name here, rather than built into an index no
// dataset could load again (container_fuzzer: a pts of -44666559216426240).
void check_built_times(const PacketIndex& idx, const std::string& name) {
  auto check = [&](const char* what, size_t i, int64_t v, bool may_be_unknown) {
    if ((may_be_unknown && v == AV_NOPTS_VALUE) || (v >= -kIndexMaxValue && v <= kIndexMaxValue)) return;
    throw DecodeError(name + ": the container gives " + what + " " + std::to_string(i) + " a timestamp of " +
                      std::to_string(v) + ", outside what vidlake stores (at most 2^53 in magnitude)");
  };
  for (size_t i = 0; i < idx.packets.size(); ++i) {
    const PacketRecord& r = idx.packets[i];
    check("packet", i, r.pts, true);
    check("packet", i, r.dts, true);
    check("packet", i, r.duration, false);
  }
  for (size_t f = 0; f < idx.frame_pts.size(); ++f) check("frame", f, idx.frame_pts[f], false);
}

enum class ColourField { kRange, kSpace, kPrimaries, kTransfer, kChromaLocation, kFieldOrder };

// Note [Enum fields from FFmpeg] (ffmpeg_util.h): a colour field whose value
// this FFmpeg does not name is stored as unspecified, as FFmpeg's H.264 and
// HEVC parsers do with such a value in a VUI. The index then passes
// check_built_stream, and the frames convert as those of a stream that says
// nothing about its colours.
int known_or_unspecified(int v, ColourField field) {
  switch (field) {
    case ColourField::kRange:
      return v >= 0 && v < AVCOL_RANGE_NB ? v : AVCOL_RANGE_UNSPECIFIED;
    case ColourField::kSpace:
      return v >= 0 && v < AVCOL_SPC_NB && av_color_space_name(static_cast<AVColorSpace>(v)) != nullptr
                 ? v
                 : AVCOL_SPC_UNSPECIFIED;
    case ColourField::kPrimaries:
      return v >= 0 && v < AVCOL_PRI_NB && av_color_primaries_name(static_cast<AVColorPrimaries>(v)) != nullptr
                 ? v
                 : AVCOL_PRI_UNSPECIFIED;
    case ColourField::kTransfer:
      return v >= 0 && v < AVCOL_TRC_NB &&
                     av_color_transfer_name(static_cast<AVColorTransferCharacteristic>(v)) != nullptr
                 ? v
                 : AVCOL_TRC_UNSPECIFIED;
    case ColourField::kChromaLocation:
      return v >= 0 && v < AVCHROMA_LOC_NB ? v : AVCHROMA_LOC_UNSPECIFIED;
    case ColourField::kFieldOrder:
      return v >= AV_FIELD_UNKNOWN && v <= AV_FIELD_BT ? v : AV_FIELD_UNKNOWN;
  }
  return v;
}

StreamInfo stream_info(const AVFormatContext* fmt, const AVStream* st, int64_t source_size) {
  const AVCodecParameters* par = st->codecpar;
  StreamInfo s;
  s.stream_index = st->index;
  s.codec_id = par->codec_id;
  s.codec_tag = par->codec_tag;
  if (par->extradata != nullptr && par->extradata_size > 0) {
    s.extradata.assign(reinterpret_cast<const char*>(par->extradata), static_cast<size_t>(par->extradata_size));
  }
  s.width = par->width;
  s.height = par->height;
  s.pix_fmt = par->format;
  s.profile = par->profile;
  s.level = par->level;
  s.bits_per_coded_sample = par->bits_per_coded_sample;
  s.bits_per_raw_sample = par->bits_per_raw_sample;
  s.color_range = known_or_unspecified(enum_value(par->color_range), ColourField::kRange);
  s.color_space = known_or_unspecified(enum_value(par->color_space), ColourField::kSpace);
  s.color_primaries = known_or_unspecified(enum_value(par->color_primaries), ColourField::kPrimaries);
  s.color_trc = known_or_unspecified(enum_value(par->color_trc), ColourField::kTransfer);
  s.chroma_location = known_or_unspecified(enum_value(par->chroma_location), ColourField::kChromaLocation);
  s.field_order = known_or_unspecified(enum_value(par->field_order), ColourField::kFieldOrder);
  s.video_delay = par->video_delay;
  s.sar_num = par->sample_aspect_ratio.num;
  s.sar_den = par->sample_aspect_ratio.den;
  s.tb_num = st->time_base.num;
  s.tb_den = st->time_base.den;
  s.avg_fps_num = st->avg_frame_rate.num;
  s.avg_fps_den = st->avg_frame_rate.den;
  s.r_fps_num = st->r_frame_rate.num;
  s.r_fps_den = st->r_frame_rate.den;
  s.rotation = display_rotation(st);
  s.start_time = st->start_time == AV_NOPTS_VALUE ? INT64_MIN : st->start_time;
  s.duration = st->duration == AV_NOPTS_VALUE ? INT64_MIN : st->duration;
  s.container = fmt->iformat->name;
  s.source_size = source_size;
  s.num_streams = static_cast<int32_t>(fmt->nb_streams);
  return s;
}

bool is_still_image_format(const char* name) {
  const std::string n = name;
  return n == "image2" || (n.size() > 5 && n.compare(n.size() - 5, 5, "_pipe") == 0);
}

// Note [Best-effort timestamps] (decode_order.cpp): where FFmpeg gives a frame
// no timestamp, vidlake uses its packet's container pts, else the previous
// frame's timestamp plus the nominal frame duration (the first frame: the
// stream's start time, else the first packet's dts, else 0).
std::vector<int64_t> fill_missing_timestamps(const PacketIndex& idx, const std::vector<int64_t>& best_effort) {
  const int64_t dur = idx.frame_duration();
  std::vector<int64_t> out(best_effort.size());
  for (size_t i = 0; i < best_effort.size(); ++i) {
    const int64_t pts = idx.packets[static_cast<size_t>(idx.frame_packet[i])].pts;
    if (best_effort[i] != AV_NOPTS_VALUE) {
      out[i] = best_effort[i];
    } else if (pts != AV_NOPTS_VALUE) {
      out[i] = pts;
    } else if (i > 0) {
      out[i] = out[i - 1] + dur;
    } else if (idx.info.start_time != INT64_MIN) {
      out[i] = idx.info.start_time;
    } else {
      out[i] = idx.packets[0].dts != AV_NOPTS_VALUE ? idx.packets[0].dts : 0;
    }
  }
  return out;
}

// Note [Keyframe heads]: what the tables path reads of the payload. For H.264
// and HEVC, the in-band state (parameter sets, x264's SEI) and the clean-random-
// access check look at each NAL unit's length prefix and header byte, and at the
// whole of non-VCL units; slice data is never looked at. So for every keyframe
// sample vidlake reads its first kKeyHead bytes, then walks its NAL units,
// fetching in rounds (one batched ranged read per round, all keyframes at once)
// only the prefixes and non-VCL units the head did not cover. The result is the
// sample as the full demux sees it, except that slice data reads as zeros.
//
// The heads are laid over the zeros before the demux pass that builds the index:
// libavformat runs the H.264 parser on MP4 samples too, and the parser sets the
// key flag from the payload (on zeros a sync sample would lose it). Which samples
// are sync is known once the demuxer has read their tables: for an MP4 file whose
// moov lists every sample, right after avformat_open_input (its index entries), so
// one pass does (build_index, Pass::kHeadsFirst); the pass checks that it found no
// sync sample the header had not listed, else the two passes run. Fragments (moof)
// are read by the pass itself, and Matroska needs the first slices of every block
// laid over too (Note [First slices of Matroska frames]): there a first pass lists
// the sync samples and a second one builds the index. Counted by build_packets and
// build_payload_bytes (tests/test_index_tables.py, test_tables_path_demuxes_once).
constexpr int64_t kKeyHead = 4096;
constexpr int64_t kNalPeek = 64;

struct SparsePacket {
  int64_t offset = 0;
  std::string data;                // the sample's size, zeros where not read
  std::vector<ByteRange> known;    // relative ranges read
  int64_t cursor = 0;              // next NAL length prefix
  bool done = false;
  bool covered(int64_t s, int64_t e) const {
    int64_t at = s;
    bool progress = true;
    while (at < e && progress) {
      progress = false;
      for (const ByteRange& r : known) {
        if (r.start <= at && at < r.end) {
          at = r.end;
          progress = true;
        }
      }
    }
    return at >= e;
  }
};

bool is_vcl(AVCodecID codec, uint8_t header) {
  if (codec == AV_CODEC_ID_H264) {
    const int t = header & 0x1f;
    return t >= 1 && t <= 5;
  }
  return ((header >> 1) & 0x3f) < 32;  // HEVC
}

// Advances p's NAL walk over what is known; returns the next range it needs, or an empty range when done.
ByteRange next_need(SparsePacket& p, AVCodecID codec, int nls) {
  const auto size = static_cast<int64_t>(p.data.size());
  const auto* d = reinterpret_cast<const uint8_t*>(p.data.data());
  while (!p.done) {
    const int64_t c = p.cursor;
    if (size - c < nls) {
      p.done = true;
      break;
    }
    if (!p.covered(c, std::min(size, c + nls + 1))) return ByteRange{c, std::min(size, c + kNalPeek)};
    uint64_t len = 0;
    for (int i = 0; i < nls; ++i) len = (len << 8) | d[c + i];
    if (len > static_cast<uint64_t>(size - c - nls)) {
      p.done = true;  // does not split: the filters stop here too
      break;
    }
    const int64_t body = c + nls;
    const auto end = body + static_cast<int64_t>(len);
    if (len > 0 && !is_vcl(codec, d[body]) && !p.covered(body, end)) return ByteRange{body, end};
    p.cursor = end;
  }
  return ByteRange{0, 0};
}

void read_keyframe_heads(ByteSource& source, std::vector<SparsePacket>& packets, AVCodecID codec, int nls) {
  std::vector<ByteRange> want;
  std::vector<size_t> who;
  for (size_t i = 0; i < packets.size(); ++i) {
    const auto size = static_cast<int64_t>(packets[i].data.size());
    want.push_back(ByteRange{0, std::min(size, kKeyHead)});
    who.push_back(i);
  }
  while (!want.empty()) {
    std::vector<ByteRange> absolute;
    for (size_t k = 0; k < want.size(); ++k) {
      const int64_t o = packets[who[k]].offset;
      absolute.push_back(ByteRange{o + want[k].start, o + want[k].end});
    }
    std::vector<std::string> got = source.read_ranges(absolute);
    for (size_t k = 0; k < want.size(); ++k) {
      SparsePacket& p = packets[who[k]];
      const auto n = std::min<int64_t>(static_cast<int64_t>(got[k].size()), want[k].length());
      std::memcpy(&p.data[static_cast<size_t>(want[k].start)], got[k].data(), static_cast<size_t>(n));
      p.known.push_back(ByteRange{want[k].start, want[k].start + n});
      if (n < want[k].length()) p.done = true;  // the source ended early: stop walking
    }
    want.clear();
    who.clear();
    for (size_t i = 0; i < packets.size(); ++i) {
      ByteRange r = next_need(packets[i], codec, nls);
      if (r.length() > 0) {
        want.push_back(r);
        who.push_back(i);
      }
    }
  }
}

// Note [First slices of Matroska frames]: FFmpeg's Matroska demuxer runs the H.264 parser on
// every block, and the parser sets the key flag from the payload (an IDR slice, a recovery point
// SEI), whatever the block's key bit says. It reads each access unit only up to its first slice:
// the NAL units before it whole, and the head of that slice. The scan keeps the first 256 bytes
// of each frame its reads held anyway; what the parser needs past them is fetched in batched
// rounds. Those bytes are laid over the zeros of every other frame, so the parser sees on them
// what it sees on the real file. A packet the parser then flags key without being one whose
// whole head was read (Note [Keyframe heads]) sends the file to the full demux.
constexpr int64_t kSliceHead = 128;

// Bytes of `head` (the first bytes of a `size`-byte access unit) the parser looks at, or -1 with
// *need set when it looks further (-2: the NAL units do not split: not the simple case).
int64_t parser_head(const std::string& head, int64_t size, AVCodecID codec, int nls, int64_t* need) {
  const auto have = static_cast<int64_t>(head.size());
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  int64_t c = 0;
  for (;;) {
    if (size - c < nls) return size;  // no slice: the parser reads it all
    if (c + nls + 1 > have) {
      *need = c + nls + kSliceHead;
      return -1;
    }
    uint64_t len = 0;
    for (int i = 0; i < nls; ++i) len = (len << 8) | d[c + i];
    if (len == 0 || len > static_cast<uint64_t>(size - c - nls)) return -2;
    const int64_t body = c + nls;
    const int64_t end = is_vcl(codec, d[body]) ? std::min(size, body + kSliceHead) : body + static_cast<int64_t>(len);
    if (end > have) {
      *need = is_vcl(codec, d[body]) ? end : end + nls + kSliceHead;
      return -1;
    }
    if (is_vcl(codec, d[body])) return end;
    c = end;
  }
}

// Lays the parser's view of every non-key block of `track` over the zeros (Note [First slices
// of Matroska frames]); false when that cannot be done exactly.
bool read_first_slices(ByteSource& source, TablesOnlySource& tables, const MkvLayout& mkv, uint64_t track,
                       AVCodecID codec, int nls) {
  struct Pending {
    const MkvBlock* block;
    int64_t need;
  };
  std::vector<Pending> pending;
  for (const MkvBlock& b : mkv.blocks) {
    if (b.track != track || b.key || b.size <= 0) continue;
    int64_t need = 0;
    const int64_t r = parser_head(b.head, b.size, codec, nls, &need);
    if (r == -2) return false;
    if (r >= 0) {
      if (!b.head.empty()) tables.overlay(b.data, b.head);
    } else {
      pending.push_back(Pending{&b, need});
    }
  }
  for (int round = 0; round < 4 && !pending.empty(); ++round) {
    std::vector<ByteRange> want;
    for (const Pending& p : pending) {
      const int64_t len = std::min(p.block->size, std::max(p.need, kKeyHead));
      want.push_back(ByteRange{p.block->data, p.block->data + len});
    }
    std::vector<std::string> got = source.read_ranges(want);
    std::vector<Pending> next;
    for (size_t k = 0; k < pending.size(); ++k) {
      if (got[k].size() < static_cast<size_t>(want[k].length())) return false;  // the source ended early
      int64_t need = 0;
      const int64_t r = parser_head(got[k], pending[k].block->size, codec, nls, &need);
      if (r == -2) return false;
      if (r >= 0) {
        tables.overlay(pending[k].block->data, std::move(got[k]));
      } else {
        next.push_back(Pending{pending[k].block, need});
      }
    }
    pending = std::move(next);
  }
  return pending.empty();
}

// Codecs whose MP4 samples are one access unit each, with nothing else in the payload
// the index needs beyond Note [Keyframe heads]. Sample entries avc1/hvc1 keep their
// parameter sets in the sample entry; avc3/hev1 may also carry them in-band, which
// encoders put in sync samples, where Note [Keyframe heads] reads them (a set sent
// only in a non-sync sample is not seen: docs/REMOTE.md). Others are demuxed fully.
bool tables_codec(const AVCodecParameters* par, int nal_length_size) {
  const uint32_t tag = par->codec_tag;
  switch (par->codec_id) {
    case AV_CODEC_ID_H264:
      return (tag == MKTAG('a', 'v', 'c', '1') || tag == MKTAG('a', 'v', 'c', '3')) && nal_length_size > 0;
    case AV_CODEC_ID_HEVC:
      return (tag == MKTAG('h', 'v', 'c', '1') || tag == MKTAG('h', 'e', 'v', '1')) && nal_length_size > 0;
    default:  // AV1, MPEG-4 part 2, ...: their parsers set the key flag from the payload

      return false;
  }
}

// Matroska's V_MPEG4/ISO/AVC and V_MPEGH/ISO/HEVC blocks are access units in the MP4 sample
// format (length-prefixed NAL units, parameter sets in CodecPrivate or in-band), one per block.
bool mkv_tables_codec(const AVCodecParameters* par, int nal_length_size) {
  return (par->codec_id == AV_CODEC_ID_H264 || par->codec_id == AV_CODEC_ID_HEVC) && nal_length_size > 0;
}

}  // namespace

namespace {

// The sync samples an MP4 demuxer knows of now, as (position, size): its index entries flagged
// key (every sample of the moov's tables once the header is read; a fragment's once it is read).
std::vector<ByteRange> mp4_sync_samples(AVStream* st) {
  std::vector<ByteRange> out;
  const int entries = avformat_index_get_entries_count(st);
  for (int e = 0; e < entries; ++e) {
    const AVIndexEntry* ie = avformat_index_get_entry(st, e);
    if (ie != nullptr && (ie->flags & AVINDEX_KEYFRAME) && ie->size > 0) {
      out.push_back(ByteRange{ie->pos, ie->pos + ie->size});
    }
  }
  return out;
}

bool same_ranges(const std::vector<ByteRange>& a, const std::vector<ByteRange>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ByteRange& x, const ByteRange& y) { return x.start == y.start && x.end == y.end; });
}

// The heads of `sync` (Note [Keyframe heads]), laid over the zeros of `tables`.
void lay_keyframe_heads(ByteSource& source, TablesOnlySource& tables, const std::vector<ByteRange>& sync,
                        AVCodecID codec, int nls) {
  std::vector<SparsePacket> heads(sync.size());
  for (size_t k = 0; k < sync.size(); ++k) {
    heads[k].offset = sync[k].start;
    heads[k].data.assign(static_cast<size_t>(sync[k].length()), '\0');
  }
  read_keyframe_heads(source, heads, codec, nls);
  for (SparsePacket& h : heads) tables.overlay(h.offset, std::move(h.data));
}

// What one call of build() is (Note [Keyframe heads]).
enum class Pass {
  kDemux,      // the full demux (tables == nullptr): the payload is real
  kHeadsFirst, // tables, MP4 without fragments: the heads are laid over before the one pass
  kFindSync,   // tables, the first of two passes: only sync_out (and mkv_track_out) are wanted
  kLaid,       // tables, the second of two passes: the heads were laid over before it
};

// The index of `source`. With `tables` (Note [Index from the container's tables]) the
// demuxer reads through it (payload as zeros); nothing is returned then when the
// file is not one the tables path can index exactly (the caller demuxes it fully).
// kFindSync: sync_out gets the (position, size) of every sync sample, mkv_track_out the Matroska
// stream's track, and what is returned is not an index yet. kHeadsFirst: nothing is returned, and
// *sync_moved is set, when the pass found sync samples the header did not list (then the two passes).
// mkv: the Matroska block records (Note [Matroska index from the block headers]).
// packets: counts every packet libavformat hands over (all passes of one build_index).
std::optional<PacketIndex> build(ByteSource& source, int stream, int64_t& packets, Pass pass,
                                 TablesOnlySource* tables, std::vector<ByteRange>* sync_out = nullptr,
                                 const MkvLayout* mkv = nullptr, uint64_t* mkv_track_out = nullptr,
                                 bool* sync_moved = nullptr) {
  ByteSource& demux_source = tables != nullptr ? static_cast<ByteSource&>(*tables) : source;
  SourceDemuxer demuxer(demux_source, /*keep_recent=*/tables == nullptr, /*allow_probe=*/tables == nullptr);
  if (tables != nullptr && demuxer.needs_probe()) return std::nullopt;
  AVFormatContext* fmt = demuxer.context();
  if (is_still_image_format(fmt->iformat->name)) {
    throw UnsupportedError(source.name() + ": is a still image (" + fmt->iformat->name + "), not a video");
  }
  int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, stream, -1, nullptr, 0);
  if (stream >= 0 && (stream >= static_cast<int>(fmt->nb_streams) ||
                      fmt->streams[stream]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)) {
    throw UnsupportedError(source.name() + ": stream " + std::to_string(stream) + " is not a video stream");
  }
  if (best < 0) throw UnsupportedError(source.name() + ": has no video stream");
  if (stream >= 0) best = stream;
  AVStream* st = fmt->streams[best];
  if (st->codecpar->codec_id == AV_CODEC_ID_NONE) {
    throw UnsupportedError(source.name() + ": video stream uses a codec this FFmpeg does not know");
  }
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != best) fmt->streams[i]->discard = AVDISCARD_ALL;
  }

  PacketIndex idx;
  idx.info = stream_info(fmt, st, source.size());
  check_built_stream(idx.info, source.name());  // every field the loader checks, by name
  FrameFilter filter(st->codecpar->codec_id, idx.info.extradata);
  if (tables != nullptr) {
    const std::string container = fmt->iformat->name;
    const int nls = filter.nal_length_size();
    const bool ok = mkv != nullptr ? container == "matroska,webm" && mkv_tables_codec(st->codecpar, nls)
                                   : container == "mov,mp4,m4a,3gp,3g2,mj2" && tables_codec(st->codecpar, nls);
    if (!ok) return std::nullopt;
  }
  std::vector<ByteRange> sync_before;
  if (pass == Pass::kHeadsFirst) {
    // The header listed every sample: the heads are read and laid over before the one pass, as the
    // second of two passes has them (the H.264 parser libavformat runs on MP4 samples sets their
    // key flag from the payload). The bytes the header reads left in the demuxer's buffer (zeros
    // where the heads now lie) are dropped.
    sync_before = mp4_sync_samples(st);
    lay_keyframe_heads(source, *tables, sync_before, st->codecpar->codec_id, filter.nal_length_size());
    avio_flush(fmt->pb);
  }
  if (tables != nullptr && mkv == nullptr) {
    // Note [Direct payload reads]: the mov demuxer reads each sample with one avio_read; direct
    // mode hands it the packet's own buffer, which the source fills (zeros, heads) in one write,
    // instead of filling the AVIO buffer and copying each sample out of it.
    fmt->pb->direct = 1;
  }
  InbandScanner inband(st->codecpar->codec_id, filter.nal_length_size());  // Note [Replayed in-band state]
  PacketPtr pkt = make_packet();
  std::vector<int64_t> demuxer_pos;  // pkt->pos of each packet, for the demuxer path
  uint64_t mkv_track = 0;            // Matroska: the TrackNumber of the stream
  int ret;
  std::optional<ScopedLogMute> mute;  // the tables path: the parser's words on zeros (ffmpeg_log.h)
  if (tables != nullptr) mute.emplace();
  while ((ret = demuxer.read(pkt.get())) >= 0) {
    ++packets;
    if (pkt->stream_index != best) {
      av_packet_unref(pkt.get());
      continue;
    }
    PacketRecord rec;
    rec.pts = pkt->pts;
    rec.dts = pkt->dts;
    rec.duration = pkt->duration;
    rec.size = pkt->size;
    rec.flags = static_cast<uint32_t>(pkt->flags) & kDecoderPacketFlags;
    const bool discard = (pkt->flags & AV_PKT_FLAG_DISCARD) != 0;
    if (tables != nullptr) {
      // One access unit per sample; keyframes are checked after the loop (Note [Keyframe heads]).
      if (!discard && pkt->size > 0) rec.flags |= kPacketIsFrame;
      if ((pkt->flags & AV_PKT_FLAG_CORRUPT) || pkt->pos < 0) return std::nullopt;
    } else {
      inband.scan(static_cast<int32_t>(idx.packets.size()), pkt->data, pkt->size);
      if (!discard && filter.is_frame(pkt->data, pkt->size)) rec.flags |= kPacketIsFrame;
      if ((pkt->flags & AV_PKT_FLAG_KEY) && !filter.is_clean_random_access(pkt->data, pkt->size)) {
        rec.flags |= kPacketNotSeekable;
      }
      const bool nal_codec =
          st->codecpar->codec_id == AV_CODEC_ID_H264 || st->codecpar->codec_id == AV_CODEC_ID_HEVC;
      if ((pkt->flags & AV_PKT_FLAG_CORRUPT) || (nal_codec && !discard && pkt->size > 0 && !rec.is_frame())) {
        idx.damaged = true;
      }
    }
    // Side data that changes the decoder's configuration only the demuxer can replay.
    size_t sd_size = 0;
    if (av_packet_get_side_data(pkt.get(), AV_PKT_DATA_NEW_EXTRADATA, &sd_size) != nullptr) idx.contiguous = false;
    rec.offset = pkt->pos;
    demuxer_pos.push_back(pkt->pos);
    if (idx.contiguous && pkt->size > 0 && tables == nullptr) {
      int64_t found = demuxer.locate(pkt->pos, pkt->data, pkt->size, kPayloadWindow);
      if (found < 0) {
        idx.contiguous = false;
      } else {
        rec.offset = found;
      }
    }
    if (mkv != nullptr) {
      // The frame data follows the block header (the demuxer's pos); the full demux finds it there.
      // The stream's TrackNumber is not public (st->id is not it): its first block says it.
      const MkvBlock* b = mkv->block_at(pkt->pos);
      if (b != nullptr && mkv_track == 0) mkv_track = b->track;
      if (b == nullptr || b->laces != 1 || b->size != pkt->size || b->track != mkv_track) {
        return std::nullopt;  // laced or transformed (content encoding) frames: not the simple case
      }
      if (pkt->size > 0) rec.offset = b->data;
    }
    if (rec.offset < 0) idx.contiguous = false;
    idx.packets.push_back(rec);
    av_packet_unref(pkt.get());
  }
  if (ret != AVERROR_EOF && idx.packets.empty()) throw_ffmpeg_error(ret, source.name(), "cannot read packets");
  mute.reset();
  if (tables != nullptr && ret != AVERROR_EOF) return std::nullopt;  // stopped early: let the full demux say why
  if (mkv_track_out != nullptr) *mkv_track_out = mkv_track;
  if (pass == Pass::kFindSync) {
    if (mkv != nullptr) {
      for (const MkvBlock& b : mkv->blocks) {
        if (b.key && b.size > 0 && b.track == mkv_track) sync_out->push_back(ByteRange{b.data, b.data + b.size});
      }
    } else {
      *sync_out = mp4_sync_samples(st);
    }
    return idx;  // the caller lays the heads over, then runs the second pass
  }
  if (pass == Pass::kHeadsFirst && !same_ranges(mp4_sync_samples(st), sync_before)) {
    *sync_moved = true;  // not expected without fragments; the two passes read what the pass found
    return std::nullopt;
  }
  if (tables != nullptr) {
    // What the payload says, from the sync samples' heads (Note [Keyframe heads]).
    for (size_t p = 0; p < idx.packets.size(); ++p) {
      PacketRecord& r = idx.packets[p];
      const std::string* head = tables->overlay_at(r.offset);
      if (head == nullptr || static_cast<int64_t>(head->size()) != r.size) {
        // Matroska: the H.264 parser sets the key flag from the payload; a key packet whose whole
        // head was not read is one the container did not flag (Note [First slices of Matroska frames]).
        if (mkv != nullptr && (r.flags & AV_PKT_FLAG_KEY)) return std::nullopt;
        continue;
      }
      const auto* d = reinterpret_cast<const uint8_t*>(head->data());
      inband.scan(static_cast<int32_t>(p), d, r.size);
      if (!filter.is_frame(d, r.size)) return std::nullopt;  // a sync sample without a picture: not the simple case
      if ((r.flags & AV_PKT_FLAG_KEY) && !filter.is_clean_random_access(d, r.size)) r.flags |= kPacketNotSeekable;
    }
  }
  idx.inband = inband.finish();
  if (idx.packets.empty()) throw DecodeError(source.name() + ": the video stream has no packets");
  if (!idx.contiguous) {
    // Packets are replayed through the demuxer: offsets are its own positions (-1: unknown).
    for (size_t p = 0; p < idx.packets.size(); ++p) idx.packets[p].offset = demuxer_pos[p];
  }

  // Presentation order. With container pts on every frame: sort by pts.
  std::vector<int32_t> candidates;
  bool all_pts = true;
  for (size_t p = 0; p < idx.packets.size(); ++p) {
    if (!idx.packets[p].is_frame()) continue;
    candidates.push_back(static_cast<int32_t>(p));
    if (idx.packets[p].pts == AV_NOPTS_VALUE) all_pts = false;
  }
  std::set<int64_t> seen;
  for (int32_t p : candidates) {
    if (!all_pts) break;
    if (!seen.insert(idx.packets[static_cast<size_t>(p)].pts).second) all_pts = false;
  }
  if (all_pts) {
    // With a pts on every frame, libavcodec's best-effort timestamp is that pts
    // (frames come out in pts order, so the pts never goes backwards and wins
    // guess_correct_pts), except for a frame FFmpeg returns with no timestamp
    // at all (the last MPEG-2 picture of matrixbench_mpeg2.lq1.mpg, drained at
    // the end): vidlake keeps its packet's pts (Note [Best-effort timestamps]).
    std::stable_sort(candidates.begin(), candidates.end(), [&](int32_t a, int32_t b) {
      return idx.packets[static_cast<size_t>(a)].pts < idx.packets[static_cast<size_t>(b)].pts;
    });
    idx.frame_packet = candidates;
    for (int32_t p : candidates) idx.frame_pts.push_back(idx.packets[static_cast<size_t>(p)].pts);
  } else {
    // Note [Containers without presentation timestamps]
    // AVI and raw elementary streams store no pts (nor does the first packet of
    // some MPEG-TS/PS files), so with B-frames the presentation order is known
    // only to the decoder. Here, and only here, the index is built with one
    // decode pass that records which packet each emitted frame came from and its
    // best-effort timestamp (Note [Best-effort timestamps] in decode_order.cpp).
    idx.pts_from_container = false;
    for (PacketRecord& p : idx.packets) p.flags &= ~kPacketIsFrame;
    OutputOrder order = decode_output_order(idx, source);
    idx.frame_packet = std::move(order.packets);
    for (int32_t p : idx.frame_packet) idx.packets[static_cast<size_t>(p)].flags |= kPacketIsFrame;
    idx.frame_pts = fill_missing_timestamps(idx, order.timestamps);
  }
  if (idx.frame_packet.empty()) throw DecodeError(source.name() + ": the video stream has no decodable frames");
  check_built_times(idx, source.name());
  idx.finalize();
  if (!demuxer.probed() || idx.info.pix_fmt < 0) {
    int from_sps = -1;
    if (idx.info.codec_id == AV_CODEC_ID_H264) {  // Note [H.264 pixel format]
      from_sps = h264_pixel_format(idx.info.extradata, idx.info.color_range, idx.info.color_space);
    }
    idx.info.pix_fmt = from_sps >= 0 ? from_sps : decode_first_frame_format(idx, source);
  }
  idx.built_from = tables != nullptr ? "tables" : "demux";
  return idx;
}

// Note [Checked tables]
// What the tables cannot see (docs/REMOTE.md) is decided by the NAL unit
// headers of the samples alone: whether a sample splits into NAL units and holds
// a picture (FrameFilter::is_frame, the damage check), the in-band parameter
// sets of non-sync samples (InbandScanner; those of sync samples were read with
// their heads), and x264's version SEI. For a local source, where a small read
// costs a system call and no round trip, every sample's length prefixes and
// header bytes are read (a few bytes per NAL unit, never slice data): when every
// sample is a frame and no non-sync sample holds a parameter set or an x264 SEI,
// the full demux would build the same index, field for field; otherwise it is
// run. Measured in bench/open_time.py.
class NalWalker {
 public:
  explicit NalWalker(ByteSource& source) : source_(source) {}
  // Bytes [offset, offset + n) (n <= kNalPeek), or nullptr past the end.
  const uint8_t* peek(int64_t offset, int64_t n) {
    if (offset < buf_start_ || offset + n > buf_start_ + buf_len_) {
      buf_start_ = offset;
      buf_len_ = source_.read_at(offset, buf_, kWindow);
      if (buf_len_ < 0) buf_len_ = 0;
    }
    return offset + n <= buf_start_ + buf_len_ ? buf_ + (offset - buf_start_) : nullptr;
  }

 private:
  static constexpr int64_t kWindow = 512;
  ByteSource& source_;
  uint8_t buf_[kWindow];
  int64_t buf_start_ = 0;
  int64_t buf_len_ = 0;
};

// An H.264 SEI NAL unit (small: at most kSeiRead bytes) known not to hold x264's
// version text (Note [Replayed in-band state]); false when it may.
constexpr uint64_t kSeiRead = 4096;
bool sei_without_x264_tag(ByteSource& source, int64_t offset, uint64_t len) {
  if (len > kSeiRead) return false;
  std::string nal(static_cast<size_t>(len), '\0');
  if (source.read_at(offset, reinterpret_cast<uint8_t*>(nal.data()), static_cast<int64_t>(len)) !=
      static_cast<int64_t>(len)) {
    return false;
  }
  return nal.find("x264 - core ") == std::string::npos;
}

bool samples_agree_with_tables(ByteSource& source, const PacketIndex& idx) {
  const auto codec = static_cast<AVCodecID>(idx.info.codec_id);
  if (codec != AV_CODEC_ID_H264 && codec != AV_CODEC_ID_HEVC) return false;
  const int nls = FrameFilter(codec, idx.info.extradata).nal_length_size();
  if (nls <= 0) return false;
  const bool h264 = codec == AV_CODEC_ID_H264;
  NalWalker walk(source);
  for (const PacketRecord& p : idx.packets) {
    if (p.size <= 0) continue;
    const bool sync = (p.flags & AV_PKT_FLAG_KEY) != 0;
    bool picture = false;
    int64_t pos = 0;
    while (p.size - pos >= nls) {
      const uint8_t* d = walk.peek(p.offset + pos, nls + 1);
      if (d == nullptr) return false;
      uint64_t len = 0;
      for (int i = 0; i < nls; ++i) len = (len << 8) | d[i];
      pos += nls;
      if (len > static_cast<uint64_t>(p.size - pos)) return false;  // does not split: damaged
      if (len > 0) {
        const uint8_t h = d[nls];
        const int type = h264 ? (h & 0x1f) : ((h >> 1) & 0x3f);
        picture = picture || (h264 ? (type >= 1 && type <= 5) : type < 32);
        if (!sync) {
          const bool parameter_set = h264 ? (type == 7 || type == 8 || type == 13 || type == 15)
                                          : (type >= 32 && type <= 34);
          if (parameter_set) return false;  // an in-band change only the demux records
          if (h264 && type == 6 && idx.inband.x264_build < 0 && !sei_without_x264_tag(source, p.offset + pos, len)) {
            return false;  // x264's version, first seen here: only the demux records it
          }
        }
      }
      pos += static_cast<int64_t>(len);
    }
    const bool discard = (p.flags & AV_PKT_FLAG_DISCARD) != 0;
    if (!discard && !picture) return false;  // not a frame, as the tables assumed
  }
  return true;
}

}  // namespace

PacketIndex build_index(ByteSource& source, int stream, IndexMode mode) {
  if (source.size() == 0) throw DecodeError(source.name() + ": empty file (0 bytes), not a video");
  const int64_t before = source.bytes_read();
  int64_t packets = 0;        // every demux pass, a tables attempt given up included
  int64_t payload_bytes = 0;  // handed to libavformat by the tables path (Note [Keyframe heads])
  // kAuto: the tables path where bytes cost a round trip (a non-local range source); a local
  // file or buffer is demuxed (GB/s, and the full demux also sees damaged payloads).
  const auto* cb = dynamic_cast<const CallbackSource*>(&source);
  const bool remote = cb != nullptr && !cb->local();
  bool scanned = false;  // scan_mp4_layout read every table box (and checked it)
  if (mode == IndexMode::kTables || mode == IndexMode::kChecked || (mode == IndexMode::kAuto && remote)) {
    std::optional<TablesLayout> layout = scan_mp4_layout(source);
    scanned = layout.has_value();
    std::optional<MkvLayout> mkv;
    // Note [Checked tables] walks MP4 samples at their offsets; Matroska stays on the demux there.
    if (!layout && mode != IndexMode::kChecked &&
        (mkv = scan_mkv_layout(source, {"V_MPEG4/ISO/AVC", "V_MPEGH/ISO/HEVC"}))) {
      layout = std::move(mkv->tables);
    }
    if (layout) {
      TablesOnlySource tables(source, std::move(*layout));
      const MkvLayout* blocks = mkv ? &*mkv : nullptr;
      std::optional<PacketIndex> idx;
      try {
        // Note [Keyframe heads]: an MP4 file whose header lists every sample is indexed in one pass
        // with the sync samples' heads laid over before it; a fragmented one (its fragments' sync
        // samples are known once they are read) and Matroska (Note [First slices of Matroska
        // frames]) take two: the first finds the sync samples, their heads are read and laid over,
        // the second is the index.
        bool two_passes = blocks != nullptr || tables.fragmented();
        if (!two_passes) {
          idx = build(source, stream, packets, Pass::kHeadsFirst, &tables, nullptr, nullptr, nullptr, &two_passes);
          if (two_passes) tables.clear_overlays();
        }
        if (two_passes) {
          std::vector<ByteRange> sync;
          uint64_t track = 0;
          idx = build(source, stream, packets, Pass::kFindSync, &tables, &sync, blocks, &track);
          const auto codec = idx ? static_cast<AVCodecID>(idx->info.codec_id) : AV_CODEC_ID_NONE;
          const int nls = idx ? FrameFilter(codec, idx->info.extradata).nal_length_size() : 0;
          idx.reset();
          if (nls > 0) {
            lay_keyframe_heads(source, tables, sync, codec, nls);
            if (blocks == nullptr || read_first_slices(source, tables, *blocks, track, codec, nls)) {
              idx = build(source, stream, packets, Pass::kLaid, &tables, nullptr, blocks);
            }
          }
        }
      } catch (const UnsupportedError&) {
        throw;  // the same answer the full demux would give (no video stream, a still image)
      } catch (const std::exception&) {
        if (mode == IndexMode::kTables) throw;
        idx.reset();  // e.g. damaged tables: the full demux decides what the file holds
      }
      if (idx && mode == IndexMode::kChecked && !samples_agree_with_tables(source, *idx)) idx.reset();
      payload_bytes = tables.zeroed();
      if (idx) {
        idx->build_bytes = source.bytes_read() - before;
        idx->build_packets = packets;
        idx->build_payload_bytes = payload_bytes;
        return std::move(*idx);
      }
    }
    if (mode == IndexMode::kTables) {
      throw UnsupportedError(source.name() + ": cannot build the index from container tables (not MP4/MOV or "
                             "Matroska/WebM, or a codec or layout the tables path does not index exactly; see "
                             "docs/REMOTE.md)");
    }
  }
  if (!scanned) check_mp4_tables(source);  // Note [Table entry counts] (the scan checks its own)
  PacketIndex idx = *build(source, stream, packets, Pass::kDemux, nullptr);
  idx.build_bytes = source.bytes_read() - before;
  idx.build_packets = packets;
  idx.build_payload_bytes = payload_bytes;
  return idx;
}

}  // namespace vidlake
