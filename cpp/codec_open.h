// Opening a libavcodec decoder from the codec parameters stored in a PacketIndex
// (no container needed). Every decoder of the core is opened here.
#pragma once

#include <string>

#include "ffmpeg_util.h"
#include "packet_index.h"

namespace vidlake {

// One codec thread per core, at most 16.
int default_threads();

// threads 0: default_threads(), frame + slice threading. slice_only: one thread
// (Note [Damaged streams]). `flags` are or-ed into AVCodecContext.flags before
// the codec opens. Throws UnsupportedError / DecodeError naming `name`.
CodecContextPtr open_codec(const PacketIndex& index, int threads, bool slice_only, const std::string& name,
                           int flags = 0);

}  // namespace vidlake
