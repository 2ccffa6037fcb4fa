// Builds a PacketIndex by demuxing a source once (no decoding, except the one
// case documented in docs/DESIGN.md: containers without presentation timestamps).
#pragma once

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

// stream < 0: the stream av_find_best_stream picks (as PyAV's streams.best("video")).
PacketIndex build_index(ByteSource& source, int stream);

}  // namespace vidlake
