// Builds a PacketIndex by demuxing a source once (no decoding, except the one
// case documented in docs/DESIGN.md: containers without presentation timestamps),
// or for MP4/MOV from the container's tables alone.
#pragma once

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

enum class IndexMode {
  kAuto,    // remote range sources: kTables where it applies, else kDemux; local ones: kDemux
  kDemux,   // demux every packet
  kTables,  // from the container's tables, or UnsupportedError
  // The tables where they apply and a walk of every sample's NAL units confirms
  // them (Note [Checked tables]); otherwise the full demux. For a local
  // VideoReader: the demux index, without demuxing every packet.
  kChecked,
};

// stream < 0: the stream av_find_best_stream picks (as PyAV's streams.best("video")).
// Note [Index from the container's tables] (mp4_layout.h) for kAuto / kTables.
PacketIndex build_index(ByteSource& source, int stream, IndexMode mode = IndexMode::kAuto);

}  // namespace vidlake
