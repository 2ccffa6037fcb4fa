#include "packet_feeder.h"

#include <cstring>

#include "errors.h"
#include "inband_state.h"
#include "read_plan.h"

namespace vidlake {

namespace {
constexpr int64_t kWindowBytes = 32 * 1024 * 1024;  // remote fetch window
constexpr int64_t kRangeGap = 16 * 1024;            // coalesce ranges closer than this
}  // namespace

PacketFeeder::PacketFeeder(const PacketIndex& index, ByteSource& source)
    : index_(index), source_(source), remote_(dynamic_cast<CallbackSource*>(&source) != nullptr) {}

PacketFeeder::~PacketFeeder() = default;

void PacketFeeder::position(int32_t first) {
  next_ = first;
  prefix_ = replay_prefix(index_, first);
  if (!index_.contiguous) position_demuxer(first);
}

bool PacketFeeder::next(int32_t last, AVPacket* pkt, int32_t* number) {
  if (next_ > last || next_ >= static_cast<int32_t>(index_.packets.size())) return false;
  const PacketRecord& rec = index_.packets[static_cast<size_t>(next_)];
  if (index_.contiguous) {
    int ret = av_new_packet(pkt, rec.size);
    if (ret < 0) throw_ffmpeg_error(ret, source_.name(), "cannot allocate a packet");
    copy_payload(rec, last, pkt->data);
  } else {
    read_demuxed(pkt, rec);
  }
  pkt->pts = next_;
  pkt->dts = rec.dts;
  pkt->duration = rec.duration;
  pkt->flags = static_cast<int>(rec.flags & kDecoderPacketFlags);
  pkt->pos = -1;
  if (!prefix_.empty()) {
    prepend(pkt, prefix_, source_.name());
    prefix_.clear();
  }
  *number = next_++;
  return true;
}

void prepend(AVPacket* pkt, const std::string& bytes, const std::string& name) {
  const int old_size = pkt->size;
  const int ret = av_grow_packet(pkt, static_cast<int>(bytes.size()));
  if (ret < 0) throw_ffmpeg_error(ret, name, "cannot allocate a packet");
  std::memmove(pkt->data + bytes.size(), pkt->data, static_cast<size_t>(old_size));
  std::memcpy(pkt->data, bytes.data(), bytes.size());
}

void PacketFeeder::copy_payload(const PacketRecord& rec, int32_t last, uint8_t* dst) {
  if (!remote_) {
    int64_t n = source_.read_at(rec.offset, dst, rec.size);
    if (n != rec.size) throw DecodeError(source_.name() + ": file is shorter than its index (truncated or changed?)");
    return;
  }
  if (!window_has(rec)) load_window(last);
  for (const auto& [range, bytes] : window_) {
    if (rec.offset >= range.start && rec.offset + rec.size <= range.end) {
      std::memcpy(dst, bytes.data() + (rec.offset - range.start), static_cast<size_t>(rec.size));
      return;
    }
  }
  throw DecodeError(source_.name() + ": fetched ranges do not hold packet " + std::to_string(next_));
}

bool PacketFeeder::window_has(const PacketRecord& rec) const {
  for (const auto& w : window_) {
    if (rec.offset >= w.first.start && rec.offset + rec.size <= w.first.end) return true;
  }
  return false;
}

// One fetch for packets next_..last, up to kWindowBytes.
void PacketFeeder::load_window(int32_t last) {
  int64_t bytes = 0;
  int32_t end = next_;
  while (end <= last && end < static_cast<int32_t>(index_.packets.size())) {
    bytes += index_.packets[static_cast<size_t>(end)].size;
    if (bytes > kWindowBytes && end > next_) break;
    ++end;
  }
  std::vector<ByteRange> ranges = packet_byte_ranges(index_, next_, end - 1, kRangeGap);
  std::vector<std::string> got = source_.read_ranges(ranges);
  window_.clear();
  for (size_t i = 0; i < ranges.size(); ++i) window_.emplace_back(ranges[i], std::move(got[i]));
}

void PacketFeeder::open_demuxer() {
  demuxer_ = std::make_unique<SourceDemuxer>(source_, false);
  AVFormatContext* fmt = demuxer_->context();
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != index_.info.stream_index) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  demux_next_ = 0;
  pending_.reset();
}

// Reads the next packet of our stream from the demuxer (or the one held back).
bool PacketFeeder::demux_one(AVPacket* pkt) {
  if (pending_) {
    av_packet_move_ref(pkt, pending_.get());
    pending_.reset();
    return true;
  }
  int ret;
  while ((ret = demuxer_->read(pkt)) >= 0) {
    if (pkt->stream_index == index_.info.stream_index) return true;
    av_packet_unref(pkt);
  }
  return false;
}

void PacketFeeder::position_demuxer(int32_t first) {
  if (demuxer_ && demux_next_ == first) return;
  const PacketRecord& rec = index_.packets[static_cast<size_t>(first)];
  if (demuxer_ && first > 0 && rec.offset >= 0 && demuxer_->seek_to_byte(rec.offset, index_.info.stream_index)) {
    // Note [Demuxer resync]: after a byte seek the demuxer may first return a
    // partial packet; the packet we want is the one at the recorded position
    // with the recorded size. Look a bounded distance for it.
    pending_.reset();
    PacketPtr pkt = make_packet();
    for (int tries = 0; tries < 64 && demux_one(pkt.get()); ++tries) {
      if (pkt->pos == rec.offset && pkt->size == rec.size) {
        pending_ = std::move(pkt);
        demux_next_ = first;
        return;
      }
      if (pkt->pos > rec.offset) break;
      av_packet_unref(pkt.get());
    }
  }
  // Fallback, always exact: replay from the start, counting packets.
  open_demuxer();
  PacketPtr pkt = make_packet();
  while (demux_next_ < first) {
    if (!demux_one(pkt.get())) throw DecodeError(source_.name() + ": ends before packet " + std::to_string(first));
    av_packet_unref(pkt.get());
    ++demux_next_;
  }
}

void PacketFeeder::read_demuxed(AVPacket* pkt, const PacketRecord& rec) {
  if (!demuxer_) position_demuxer(next_);
  if (!demux_one(pkt)) throw DecodeError(source_.name() + ": ends before packet " + std::to_string(next_));
  if (pkt->size != rec.size) {
    throw DecodeError(source_.name() + ": packet " + std::to_string(next_) +
                      " differs from the index (file changed since it was indexed?)");
  }
  ++demux_next_;
}

}  // namespace vidlake
