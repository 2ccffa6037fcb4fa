#include "inband_state.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "frame_filter.h"

namespace vidlake {

// Note [Replayed in-band state]
// A decoder that starts at a keyframe has not seen what came before it, and a
// keyframe does not repeat everything a decoder keeps. Two cases are known to
// change pictures (issue 12.2), and both are recorded at index time and given
// to every decoder state, so that every frame equals the sequential decode
// whatever the access pattern (single reads in any order, batches, parked and
// one-thread states, retries):
//
// 1. x264's version. FFmpeg's H.264 decoder reads "x264 - core N" from a
//    user-data-unregistered SEI in the first access unit and, for N < 151,
//    switches on a workaround for x264's 4:4:4 8x8-transform bug (and older
//    ones for older N). A decoder that seeks past the first GOP never sees the
//    SEI and decodes such files to garbage (mean error > 100 levels). The
//    build number is stored and passed as the decoder's `x264_build` option,
//    which FFmpeg uses until a SEI says otherwise (codec_open.cpp).
// 2. Parameter sets that appear only in-band (Annex B, MPEG-TS/PS, raw
//    streams; also mid-stream changes in mp4). libavformat puts the first
//    ones into the extradata, but a stream whose SPS/PPS change later (spliced
//    or concatenated streams) would be decoded with the first ones after a seek.
//    Every distinct in-band SPS/PPS (H.264 NAL types 7, 8, 13, 15) and
//    VPS/SPS/PPS (HEVC 32-34) is stored once, with the packets it appears in;
//    a decode run starting at packet K first gets, prepended to packet K, each
//    set that appeared before K, in the order of its last appearance. Sets the
//    decoder already holds are parsed again and change nothing.
// Other codecs: MPEG-1/2 and MPEG-4 Part 2 repeat their sequence / VOL headers
// per GOP or carry them in extradata; VP8/VP9/AV1 keyframes are self-contained.

namespace {

const char kX264Tag[] = "x264 - core ";

bool is_parameter_set(AVCodecID codec, uint8_t header) {
  if (codec == AV_CODEC_ID_H264) {
    const int t = header & 0x1f;
    return t == 7 || t == 8 || t == 13 || t == 15;
  }
  const int t = (header >> 1) & 0x3f;
  return t >= 32 && t <= 34;
}

// Calls fn(nal, size) for each NAL unit; Annex B units lose trailing zero bytes.
template <typename Fn>
void for_each_nal(const uint8_t* d, int64_t size, int length_size, Fn fn) {
  if (length_size > 0) {
    int64_t pos = 0;
    while (size - pos >= length_size) {
      uint64_t len = 0;
      for (int i = 0; i < length_size; ++i) len = (len << 8) | d[pos + i];
      pos += length_size;
      if (len > static_cast<uint64_t>(size - pos)) return;
      if (len > 0) fn(d + pos, static_cast<int64_t>(len));
      pos += static_cast<int64_t>(len);
    }
    return;
  }
  int64_t start = -1;
  for (int64_t i = 0; i + 2 < size; ++i) {
    if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
      if (start >= 0) {
        int64_t end = i;
        while (end > start && d[end - 1] == 0) --end;
        if (end > start) fn(d + start, end - start);
      }
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0 && start < size) {
    int64_t end = size;
    while (end > start && d[end - 1] == 0) --end;
    if (end > start) fn(d + start, end - start);
  }
}

}  // namespace

InbandScanner::InbandScanner(AVCodecID codec_id, int nal_length_size)
    : codec_id_(codec_id), nal_length_size_(nal_length_size) {}

void InbandScanner::scan(int32_t packet, const uint8_t* data, int64_t size) {
  if ((codec_id_ != AV_CODEC_ID_H264 && codec_id_ != AV_CODEC_ID_HEVC) || data == nullptr || size <= 0) return;
  for_each_nal(data, size, nal_length_size_, [&](const uint8_t* n, int64_t len) { nal(packet, n, len); });
}

void InbandScanner::nal(int32_t packet, const uint8_t* data, int64_t size) {
  if (is_parameter_set(codec_id_, data[0])) {
    std::string bytes(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
    auto [it, added] = known_.emplace(std::move(bytes), static_cast<int32_t>(state_.parameter_sets.size()));
    if (added) state_.parameter_sets.push_back(it->first);
    state_.appearances.push_back({packet, it->second});
    return;
  }
  // H.264 SEI (type 6) holding x264's user-data-unregistered text; the first one
  // counts (x264 writes it once, in the first access unit). ASCII text holds no
  // emulation-prevention bytes, so the raw NAL unit is searched.
  if (codec_id_ != AV_CODEC_ID_H264 || (data[0] & 0x1f) != 6 || state_.x264_build >= 0) return;
  const char* begin = reinterpret_cast<const char*>(data);
  const char* end = begin + size;
  const char* tag = std::search(begin, end, kX264Tag, kX264Tag + sizeof(kX264Tag) - 1);
  if (tag == end) return;
  int64_t build = 0;
  int digits = 0;
  for (const char* p = tag + sizeof(kX264Tag) - 1; p < end && *p >= '0' && *p <= '9' && digits < 9; ++p, ++digits) {
    build = build * 10 + (*p - '0');
  }
  if (digits > 0 && build > 0) state_.x264_build = static_cast<int32_t>(build);  // as FFmpeg's SEI parser
}

std::string replay_prefix(const PacketIndex& index, int32_t start) {
  const InbandState& st = index.inband;
  if (st.appearances.empty() || st.appearances.front().packet >= start) return {};
  std::vector<int32_t> last(st.parameter_sets.size(), -1);  // set -> position of its last appearance
  int32_t pos = 0;
  for (const InbandState::Appearance& a : st.appearances) {
    if (a.packet >= start) break;
    last[static_cast<size_t>(a.set)] = pos++;
  }
  std::vector<std::pair<int32_t, int32_t>> order;  // (last position, set)
  for (size_t s = 0; s < last.size(); ++s) {
    if (last[s] >= 0) order.emplace_back(last[s], static_cast<int32_t>(s));
  }
  std::sort(order.begin(), order.end());
  const int length_size = FrameFilter(static_cast<AVCodecID>(index.info.codec_id), index.info.extradata).nal_length_size();
  std::string out;
  for (const auto& [unused, s] : order) {
    const std::string& nal = st.parameter_sets[static_cast<size_t>(s)];
    if (length_size > 0) {
      for (int i = length_size - 1; i >= 0; --i) out.push_back(static_cast<char>((nal.size() >> (8 * i)) & 0xff));
    } else {
      out.append("\0\0\0\1", 4);
    }
    out += nal;
  }
  return out;
}

}  // namespace vidlake
