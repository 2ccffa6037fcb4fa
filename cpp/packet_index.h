// The packet index: everything a read needs to know about one video stream,
// built once by demuxing (cpp/index_builder.*) and stored as compact versioned
// bytes beside the sample, so a read never re-probes the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vidlake {

// Index format version written by this build; a reader refuses a newer major.
constexpr uint16_t kIndexFormatMajor = 1;
constexpr uint16_t kIndexFormatMinor = 1;  // 1.1: in-band decoder state (InbandState)

// Bits in PacketRecord::flags (FFmpeg's AV_PKT_FLAG_* occupy the low five bits,
// and only those are passed to the decoder).
constexpr uint32_t kPacketIsFrame = 0x80;
constexpr uint32_t kPacketNotSeekable = 0x40;  // flagged key, but not a clean random-access point
constexpr uint32_t kDecoderPacketFlags = 0x1f;

struct PacketRecord {
  int64_t pts = 0;       // AV_NOPTS_VALUE when the container has none
  int64_t dts = 0;
  int64_t duration = 0;
  int64_t offset = 0;    // contiguous: first byte of the payload; else the demuxer's pos
  int32_t size = 0;
  uint32_t flags = 0;    // AV_PKT_FLAG_KEY | AV_PKT_FLAG_DISCARD | ... | kPacketIsFrame
  bool key() const { return (flags & 1u) != 0 && (flags & kPacketNotSeekable) == 0; }  // a decode may start here
  bool is_frame() const { return (flags & kPacketIsFrame) != 0; }
};

// Codec parameters (enough to rebuild AVCodecParameters) and stream facts.
struct StreamInfo {
  int32_t stream_index = 0;
  int32_t codec_id = 0;
  uint32_t codec_tag = 0;
  std::string extradata;
  int32_t width = 0, height = 0, pix_fmt = -1;
  int32_t profile = -99, level = -99;
  int32_t bits_per_coded_sample = 0, bits_per_raw_sample = 0;
  int32_t color_range = 0, color_space = 2, color_primaries = 2, color_trc = 2;
  int32_t chroma_location = 0, field_order = 0, video_delay = 0;
  int32_t sar_num = 0, sar_den = 1;
  int32_t tb_num = 1, tb_den = 1;
  int32_t avg_fps_num = 0, avg_fps_den = 1;
  int32_t r_fps_num = 0, r_fps_den = 1;
  double rotation = 0.0;          // degrees, counter-clockwise, from the display matrix
  int64_t start_time = INT64_MIN;  // time_base units; INT64_MIN when unknown
  int64_t duration = INT64_MIN;
  std::string container;          // FFmpeg format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  int64_t source_size = 0;
  int32_t num_streams = 0;
};

// Decoder state carried in the stream that a keyframe does not carry, recorded
// at index time and given to every decoder state before its first packet
// (cpp/inband_state.*, Note [Replayed in-band state]; stored since format 1.1).
struct InbandState {
  int32_t x264_build = -1;                  // from x264's user-data SEI ("x264 - core N"); -1: none
  std::vector<std::string> parameter_sets;  // distinct in-band parameter-set NAL units (no start code)
  struct Appearance {
    int32_t packet;  // the packet that carries it
    int32_t set;     // index into parameter_sets
  };
  std::vector<Appearance> appearances;      // every appearance, in decode order
  bool empty() const { return x264_build < 0 && parameter_sets.empty(); }
};

class PacketIndex {
 public:
  StreamInfo info;
  InbandState inband;
  std::vector<PacketRecord> packets;   // decode order
  std::vector<int32_t> frame_packet;   // frame number (presentation order) -> packet
  std::vector<int64_t> frame_pts;      // presentation timestamp of each frame (time_base units)
  bool contiguous = true;              // each packet's bytes lie verbatim at [offset, offset+size)
  bool pts_from_container = true;      // false: timestamps derived as start + i * frame duration
  bool damaged = false;                // some packet is damaged: decode with slice threads only

  // How this index was made, not stored: "tables" or "demux" (build_index), "stored" (deserialized),
  // and the bytes the build read from its source (-1: not built here).
  std::string built_from = "stored";
  int64_t build_bytes = -1;
  // Packets libavformat handed the build (every demux pass), and payload bytes the tables path
  // handed libavformat in their place (Note [Keyframe heads]); -1: not built here.
  int64_t build_packets = -1;
  int64_t build_payload_bytes = -1;

  // Derived by finalize(), not stored.
  std::vector<int32_t> packet_frame;       // packet -> frame number, or -1
  std::vector<int32_t> keyframe_packets;   // packets flagged key, ascending
  std::vector<int32_t> needed_until;       // frame -> last packet to feed so frames <= f are decodable

  void finalize();
  int32_t num_frames() const { return static_cast<int32_t>(frame_packet.size()); }
  double seconds(int64_t pts) const {
    return static_cast<double>(pts) * info.tb_num / static_cast<double>(info.tb_den);
  }
  // The packet a decode of frame f starts from: the last keyframe at or before
  // f's packet of which f is not a leading picture (else an earlier one; packet 0
  // when there is none).
  int32_t start_packet_for(int32_t frame) const;
  // The keyframe before `packet` (for retries), or -1.
  int32_t keyframe_before(int32_t packet) const;
  std::vector<int32_t> keyframe_frames() const;

  // Derived stream facts (Python sees them in Index.metadata).
  // Nominal frame rate: the average rate, else the real (base) rate, else 0.
  // Without container timestamps (AVI, raw streams): 1 / frame_duration() when
  // packets state durations (FFmpeg 7's raw H.264/HEVC demuxers report an
  // average rate of 25 and a real rate of 60 for a 30 fps stream whose
  // packets last 1/30 s).
  double fps() const;
  // Nominal frame duration in time_base units: the median packet duration,
  // else 1 / (average, else real, frame rate), else 1.
  int64_t frame_duration() const;
  // Duration in time_base units: the container's stream duration, else from the
  // first frame's pts to the end of the last frame (its packet duration, or the
  // mean frame step when that is unknown).
  int64_t duration_ts() const;
  // Start in seconds: the container's stream start time, else the first frame's pts.
  double start_seconds() const;

  std::string serialize() const;
  static PacketIndex deserialize(const std::string& bytes);
};

}  // namespace vidlake
