// Decodes made while building an index (cpp/index_builder.*), never during a read:
// the presentation order of containers without timestamps, and the pixel format
// when the container header was trusted without a probe.
#pragma once

#include <cstdint>
#include <vector>

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

// Decodes every packet once in order and returns, for each emitted frame in
// output order, the packet it came from (Note [Containers without presentation
// timestamps] in index_builder.cpp).
std::vector<int32_t> decode_output_order(const PacketIndex& index, ByteSource& source);

// The pixel format of the first frame a decode emits (-1 if none within the
// first GOP); used when the container header was trusted without a probe.
int decode_first_frame_format(const PacketIndex& index, ByteSource& source);

}  // namespace vidlake
