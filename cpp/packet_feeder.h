// Packet feeding: delivers a video's packets by number, ready for
// avcodec_send_packet, from the index's byte ranges (contiguous containers:
// pread for files, windowed fetches for range sources) or, for containers whose
// packets are not stored verbatim, by replaying the demuxer (Note [Demuxer resync]).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "byte_source.h"
#include "demuxer.h"
#include "ffmpeg_util.h"
#include "packet_index.h"

namespace vidlake {

// Puts `bytes` in front of the packet's payload (Note [Replayed in-band state]).
void prepend(AVPacket* pkt, const std::string& bytes, const std::string& name);

class PacketFeeder {
 public:
  PacketFeeder(const PacketIndex& index, ByteSource& source);
  ~PacketFeeder();
  PacketFeeder(const PacketFeeder&) = delete;
  PacketFeeder& operator=(const PacketFeeder&) = delete;

  // The next packet delivered is `first`. A decode run starts there: the
  // in-band state a keyframe does not carry is prepended to it (Note
  // [Replayed in-band state]).
  void position(int32_t first);

  // Fills `pkt` with the next packet (if its number is <= last); its pts carries
  // the packet number, so every emitted frame says which packet it came from.
  bool next(int32_t last, AVPacket* pkt, int32_t* number);

 private:
  void copy_payload(const PacketRecord& rec, int32_t last, uint8_t* dst);
  bool window_has(const PacketRecord& rec) const;
  void load_window(int32_t last);
  void open_demuxer();
  bool demux_one(AVPacket* pkt);
  void position_demuxer(int32_t first);
  void read_demuxed(AVPacket* pkt, const PacketRecord& rec);

  const PacketIndex& index_;
  ByteSource& source_;
  bool remote_;
  int32_t next_ = 0;
  std::string prefix_;  // bytes to prepend to the next packet delivered
  std::vector<std::pair<ByteRange, std::string>> window_;
  std::unique_ptr<SourceDemuxer> demuxer_;
  int32_t demux_next_ = 0;
  PacketPtr pending_;
};

}  // namespace vidlake
