#include "packet_index.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "errors.h"
#include "index_validate.h"

extern "C" {
#include <libavutil/avutil.h>
}

namespace vidlake {

void PacketIndex::finalize() {
  packet_frame.assign(packets.size(), -1);
  for (size_t f = 0; f < frame_packet.size(); ++f) {
    packet_frame[static_cast<size_t>(frame_packet[f])] = static_cast<int32_t>(f);
  }
  keyframe_packets.clear();
  for (size_t p = 0; p < packets.size(); ++p) {
    if (packets[p].key()) keyframe_packets.push_back(static_cast<int32_t>(p));
  }
  needed_until.resize(frame_packet.size());
  int32_t running = -1;
  for (size_t f = 0; f < frame_packet.size(); ++f) {
    running = std::max(running, frame_packet[f]);
    needed_until[f] = running;
  }
}

int32_t PacketIndex::start_packet_for(int32_t frame) const {
  const int32_t p = frame_packet.at(static_cast<size_t>(frame));
  auto it = std::upper_bound(keyframe_packets.begin(), keyframe_packets.end(), p);
  while (it != keyframe_packets.begin()) {
    --it;
    const int32_t k = *it;
    bool leading;
    if (pts_from_container && packets[static_cast<size_t>(k)].pts != AV_NOPTS_VALUE) {
      leading = packets[static_cast<size_t>(k)].pts > frame_pts[static_cast<size_t>(frame)];
    } else {
      leading = packet_frame[static_cast<size_t>(k)] > frame;
    }
    if (!leading) return k;
  }
  return 0;
}

int32_t PacketIndex::keyframe_before(int32_t packet) const {
  auto it = std::lower_bound(keyframe_packets.begin(), keyframe_packets.end(), packet);
  if (it == keyframe_packets.begin()) return packet > 0 ? 0 : -1;
  return *(it - 1);
}

std::vector<int32_t> PacketIndex::keyframe_frames() const {
  // The container's keyframes (what users know as keyframes), including any a
  // decode cannot start from (see kPacketNotSeekable).
  std::vector<int32_t> out;
  for (size_t p = 0; p < packets.size(); ++p) {
    int32_t f = packet_frame[p];
    if ((packets[p].flags & 1u) != 0 && f >= 0) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t PacketIndex::frame_duration() const {
  std::vector<int64_t> durations;
  for (const PacketRecord& p : packets) {
    if (p.duration > 0) durations.push_back(p.duration);
  }
  if (!durations.empty()) {
    std::nth_element(durations.begin(), durations.begin() + static_cast<long>(durations.size() / 2), durations.end());
    return durations[durations.size() / 2];
  }
  const StreamInfo& s = info;
  const int num = s.avg_fps_num > 0 ? s.avg_fps_num : s.r_fps_num;
  const int den = s.avg_fps_num > 0 ? s.avg_fps_den : s.r_fps_den;
  if (num > 0 && den > 0) {
    // 1 / fps seconds in time_base units
    return std::max<int64_t>(1, av_rescale_q(1, AVRational{den, num}, AVRational{s.tb_num, s.tb_den}));
  }
  return 1;
}

double PacketIndex::fps() const {
  const StreamInfo& s = info;
  if (!pts_from_container) {
    bool stated = false;
    for (const PacketRecord& p : packets) stated = stated || p.duration > 0;
    if (stated) return static_cast<double>(info.tb_den) / (static_cast<double>(frame_duration()) * info.tb_num);
  }
  if (s.avg_fps_num > 0 && s.avg_fps_den > 0) return static_cast<double>(s.avg_fps_num) / s.avg_fps_den;
  if (s.r_fps_num > 0 && s.r_fps_den > 0) return static_cast<double>(s.r_fps_num) / s.r_fps_den;
  return 0.0;
}

int64_t PacketIndex::duration_ts() const {
  if (info.duration != INT64_MIN) return info.duration;
  if (frame_pts.empty()) return 0;
  const auto [lo, hi] = std::minmax_element(frame_pts.begin(), frame_pts.end());
  const int64_t first = *lo, last = *hi;
  int64_t last_dur = packets[static_cast<size_t>(frame_packet.back())].duration;
  if (last_dur <= 0 && num_frames() > 1) last_dur = (last - first) / (num_frames() - 1);
  return (last - first) + std::max<int64_t>(0, last_dur);
}

double PacketIndex::start_seconds() const {
  if (info.start_time != INT64_MIN) return seconds(info.start_time);
  if (frame_pts.empty()) return 0.0;
  return seconds(*std::min_element(frame_pts.begin(), frame_pts.end()));
}

// ---- serialisation: "VLIX", major, minor, then fields; packet columns as zigzag varint deltas.
namespace {

class Writer {
 public:
  void raw(const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
  void u16(uint16_t v) { raw(&v, 2); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void svarint(int64_t v) { varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void f64(double v) { raw(&v, 8); }
  void str(const std::string& s) {
    varint(s.size());
    raw(s.data(), s.size());
  }
  std::string out;
};

class Reader {
 public:
  explicit Reader(const std::string& s) : data(s) {}
  void need(size_t n) {
    if (pos + n > data.size()) throw IndexFormatError("packet index is truncated or damaged");
  }
  uint16_t u16() {
    need(2);
    uint16_t v;
    std::memcpy(&v, data.data() + pos, 2);
    pos += 2;
    return v;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      uint8_t b = static_cast<uint8_t>(data[pos++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw IndexFormatError("packet index has a malformed number");
  }
  int64_t svarint() {
    uint64_t v = varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  int32_t i32(const char* field) {
    const int64_t v = svarint();
    if (v < INT32_MIN || v > INT32_MAX) {
      throw IndexFormatError(std::string("packet index field '") + field + "' is out of range (damaged or crafted index)");
    }
    return static_cast<int32_t>(v);
  }
  // a + b, refusing what would overflow (delta-coded columns of a crafted index).
  static int64_t add(int64_t a, int64_t b, const char* column, size_t row, const char* field) {
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum)) {
      throw IndexFormatError(std::string("packet index field '") + column + "[" + std::to_string(row) + "]." +
                             field + "' overflows (damaged or crafted index)");
    }
    return sum;
  }
  double f64() {
    need(8);
    double v;
    std::memcpy(&v, data.data() + pos, 8);
    pos += 8;
    return v;
  }
  std::string str() {
    uint64_t n = varint();
    need(n);
    std::string s = data.substr(pos, n);
    pos += n;
    return s;
  }
  size_t count(size_t max_items) {
    uint64_t n = varint();
    if (n > max_items) throw IndexFormatError("packet index is truncated or damaged");
    return static_cast<size_t>(n);
  }
  const std::string& data;
  size_t pos = 0;
};

// ---- format 1.1: the in-band decoder state (Note [Replayed in-band state]),
// appended after the frame table. Kept here, in one place, apart from the 1.0
// fields: x264 build + 1 (0: none), the distinct parameter sets, then their
// appearances as (packet delta, set) pairs.
void write_inband_section(Writer& w, const InbandState& st) {
  w.varint(static_cast<uint64_t>(static_cast<int64_t>(st.x264_build) + 1));
  w.varint(st.parameter_sets.size());
  for (const std::string& ps : st.parameter_sets) w.str(ps);
  w.varint(st.appearances.size());
  int64_t prev = 0;
  for (const InbandState::Appearance& a : st.appearances) {
    w.svarint(a.packet - prev);
    w.varint(static_cast<uint64_t>(a.set));
    prev = a.packet;
  }
}

InbandState read_inband_section(Reader& r, size_t num_packets) {
  InbandState st;
  const uint64_t build = r.varint();
  if (build > static_cast<uint64_t>(INT32_MAX)) throw IndexFormatError("packet index has an invalid x264 build");
  st.x264_build = static_cast<int32_t>(build) - 1;
  st.parameter_sets.resize(r.count(r.data.size()));
  for (std::string& ps : st.parameter_sets) {
    ps = r.str();
    if (ps.empty()) throw IndexFormatError("packet index has an empty parameter set");
  }
  st.appearances.resize(r.count(r.data.size()));
  int64_t packet = 0;
  for (size_t k = 0; k < st.appearances.size(); ++k) {
    InbandState::Appearance& a = st.appearances[k];
    packet = Reader::add(packet, r.svarint(), "inband.appearances", k, "packet");
    const uint64_t set = r.varint();
    if (packet < 0 || static_cast<size_t>(packet) >= num_packets || set >= st.parameter_sets.size()) {
      throw IndexFormatError("packet index has an invalid in-band state entry");
    }
    a.packet = static_cast<int32_t>(packet);
    a.set = static_cast<int32_t>(set);
  }
  return st;
}

}  // namespace

std::string PacketIndex::serialize() const {
  Writer w;
  w.raw("VLIX", 4);
  w.u16(kIndexFormatMajor);
  w.u16(kIndexFormatMinor);
  const StreamInfo& s = info;
  for (int64_t v : {int64_t{s.stream_index}, int64_t{s.codec_id}, int64_t{s.codec_tag}, int64_t{s.width},
                    int64_t{s.height}, int64_t{s.pix_fmt}, int64_t{s.profile}, int64_t{s.level},
                    int64_t{s.bits_per_coded_sample}, int64_t{s.bits_per_raw_sample}, int64_t{s.color_range},
                    int64_t{s.color_space}, int64_t{s.color_primaries}, int64_t{s.color_trc},
                    int64_t{s.chroma_location}, int64_t{s.field_order}, int64_t{s.video_delay},
                    int64_t{s.sar_num}, int64_t{s.sar_den}, int64_t{s.tb_num}, int64_t{s.tb_den},
                    int64_t{s.avg_fps_num}, int64_t{s.avg_fps_den}, int64_t{s.r_fps_num}, int64_t{s.r_fps_den},
                    s.start_time, s.duration, s.source_size, int64_t{s.num_streams}}) {
    w.svarint(v);
  }
  w.f64(s.rotation);
  w.str(s.extradata);
  w.str(s.container);
  w.varint((contiguous ? 1u : 0u) | (pts_from_container ? 2u : 0u) | (damaged ? 4u : 0u));
  w.varint(packets.size());
  int64_t prev_pts = 0, prev_dts = 0, prev_end = 0;
  for (const PacketRecord& p : packets) {
    w.svarint(p.pts == AV_NOPTS_VALUE ? 0 : p.pts - prev_pts);
    w.svarint(p.dts == AV_NOPTS_VALUE ? 0 : p.dts - prev_dts);
    w.varint((p.pts == AV_NOPTS_VALUE ? 1u : 0u) | (p.dts == AV_NOPTS_VALUE ? 2u : 0u) |
             (static_cast<uint64_t>(p.flags) << 2));
    w.svarint(p.duration);
    // Wrapping arithmetic: a crafted in-memory index (tests, fuzz seeds) must not overflow here.
    w.svarint(static_cast<int64_t>(static_cast<uint64_t>(p.offset) - static_cast<uint64_t>(prev_end)));
    w.varint(static_cast<uint64_t>(p.size));
    if (p.pts != AV_NOPTS_VALUE) prev_pts = p.pts;
    if (p.dts != AV_NOPTS_VALUE) prev_dts = p.dts;
    prev_end = static_cast<int64_t>(static_cast<uint64_t>(p.offset) + static_cast<uint64_t>(p.size));
  }
  w.varint(frame_packet.size());
  int64_t prev_packet = 0, prev_fpts = 0;
  for (size_t f = 0; f < frame_packet.size(); ++f) {
    w.svarint(frame_packet[f] - prev_packet);
    w.svarint(frame_pts[f] - prev_fpts);
    prev_packet = frame_packet[f];
    prev_fpts = frame_pts[f];
  }
  write_inband_section(w, inband);
  return w.out;
}

PacketIndex PacketIndex::deserialize(const std::string& bytes) {
  Reader r(bytes);
  r.need(8);
  if (bytes.compare(0, 4, "VLIX") != 0) throw IndexFormatError("not a vidlake packet index");
  r.pos = 4;
  uint16_t major = r.u16();
  uint16_t minor = r.u16();  // a newer minor only appends fields: readable
  if (major > kIndexFormatMajor) {
    throw IndexFormatError("packet index format " + std::to_string(major) +
                           ".x was written by a newer vidlake; this version reads format " +
                           std::to_string(kIndexFormatMajor) + ".x: upgrade vidlake");
  }
  PacketIndex idx;
  StreamInfo& s = idx.info;
  s.stream_index = r.i32("stream_index");
  s.codec_id = r.i32("codec_id");
  s.codec_tag = static_cast<uint32_t>(r.svarint());
  s.width = r.i32("width");
  s.height = r.i32("height");
  s.pix_fmt = r.i32("pix_fmt");
  s.profile = r.i32("profile");
  s.level = r.i32("level");
  s.bits_per_coded_sample = r.i32("bits_per_coded_sample");
  s.bits_per_raw_sample = r.i32("bits_per_raw_sample");
  s.color_range = r.i32("color_range");
  s.color_space = r.i32("color_space");
  s.color_primaries = r.i32("color_primaries");
  s.color_trc = r.i32("color_trc");
  s.chroma_location = r.i32("chroma_location");
  s.field_order = r.i32("field_order");
  s.video_delay = r.i32("video_delay");
  s.sar_num = r.i32("sar_num");
  s.sar_den = r.i32("sar_den");
  s.tb_num = r.i32("tb_num");
  s.tb_den = r.i32("tb_den");
  s.avg_fps_num = r.i32("avg_fps_num");
  s.avg_fps_den = r.i32("avg_fps_den");
  s.r_fps_num = r.i32("r_fps_num");
  s.r_fps_den = r.i32("r_fps_den");
  s.start_time = r.svarint();
  s.duration = r.svarint();
  s.source_size = r.svarint();
  s.num_streams = r.i32("num_streams");
  s.rotation = r.f64();
  s.extradata = r.str();
  s.container = r.str();
  uint64_t flags = r.varint();
  idx.contiguous = (flags & 1u) != 0;
  idx.pts_from_container = (flags & 2u) != 0;
  idx.damaged = (flags & 4u) != 0;
  if (s.tb_num <= 0 || s.tb_den <= 0) throw IndexFormatError("packet index has an invalid time base");
  size_t n = r.count(bytes.size());
  idx.packets.resize(n);
  int64_t prev_pts = 0, prev_dts = 0, prev_end = 0;
  for (size_t k = 0; k < n; ++k) {
    PacketRecord& p = idx.packets[k];
    int64_t dpts = r.svarint();
    int64_t ddts = r.svarint();
    uint64_t bits = r.varint();
    p.duration = r.svarint();
    p.offset = Reader::add(prev_end, r.svarint(), "packets", k, "offset");
    const uint64_t size = r.varint();
    if (size > static_cast<uint64_t>(INT32_MAX)) {
      throw IndexFormatError("packet index field 'packets[" + std::to_string(k) + "].size' is out of range (damaged or crafted index)");
    }
    p.size = static_cast<int32_t>(size);
    p.flags = static_cast<uint32_t>(bits >> 2);
    p.pts = (bits & 1u) ? AV_NOPTS_VALUE : Reader::add(prev_pts, dpts, "packets", k, "pts");
    p.dts = (bits & 2u) ? AV_NOPTS_VALUE : Reader::add(prev_dts, ddts, "packets", k, "dts");
    if (p.pts != AV_NOPTS_VALUE) prev_pts = p.pts;
    if (p.dts != AV_NOPTS_VALUE) prev_dts = p.dts;
    if (p.size < 0 || (idx.contiguous && p.offset < 0)) throw IndexFormatError("packet index has an invalid packet entry");
    prev_end = Reader::add(p.offset, p.size, "packets", k, "offset");
  }
  size_t nf = r.count(bytes.size());
  idx.frame_packet.resize(nf);
  idx.frame_pts.resize(nf);
  int64_t prev_packet = 0, prev_fpts = 0;
  for (size_t f = 0; f < nf; ++f) {
    prev_packet = Reader::add(prev_packet, r.svarint(), "frames", f, "packet");
    prev_fpts = Reader::add(prev_fpts, r.svarint(), "frames", f, "pts");
    if (prev_packet < 0 || static_cast<size_t>(prev_packet) >= n) {
      throw IndexFormatError("packet index field 'frames[" + std::to_string(f) + "].packet' points outside its packets");
    }
    idx.frame_packet[f] = static_cast<int32_t>(prev_packet);
    idx.frame_pts[f] = prev_fpts;
  }
  if (major == 1 && minor >= 1) idx.inband = read_inband_section(r, n);  // 1.0: none recorded
  if (r.pos != bytes.size() && minor <= kIndexFormatMinor) {
    throw IndexFormatError("packet index has trailing bytes (damaged?)");
  }
  validate_index(idx);  // untrusted input: every field, once, here (cpp/index_validate.cpp)
  idx.finalize();
  return idx;
}

}  // namespace vidlake
