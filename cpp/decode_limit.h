// The decode limit for benchmarks only (bench/compare.py): libavcodec decoding
// exactly the packets a read needs, with none of the reader's machinery.
#pragma once

#include <cstdint>
#include <vector>

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

// Decodes exactly the planned packets with a bare send/receive loop on `threads`
// threads, converts only the wanted frames to RGB into a scratch buffer, and
// returns the seconds that took. The packets' bytes are read into memory before
// the clock starts. Contiguous containers only.
double decode_limit(ByteSource& source, const PacketIndex& index, const std::vector<int32_t>& frames, int threads);

}  // namespace vidlake
