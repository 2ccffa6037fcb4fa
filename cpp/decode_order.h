// Decodes made while building an index (cpp/index_builder.*), never during a read:
// the presentation order of containers without timestamps, and the pixel format
// when the container header was trusted without a probe.
#pragma once

#include <cstdint>
#include <vector>

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

// What a plain sequential decode emits, frame by frame in output order.
struct OutputOrder {
  std::vector<int32_t> packets;     // the packet each frame came from
  std::vector<int64_t> timestamps;  // its best_effort_timestamp (AV_NOPTS_VALUE: none)
};

// Decodes every packet once in order, one thread, with the container's own pts
// and dts, exactly as ffprobe does (Note [Containers without presentation
// timestamps] in index_builder.cpp, Note [Best-effort timestamps] here).
OutputOrder decode_output_order(const PacketIndex& index, ByteSource& source);

// The pixel format of the first frame a decode emits (-1 if none within the
// first GOP); used when the container header was trusted without a probe.
int decode_first_frame_format(const PacketIndex& index, ByteSource& source);

}  // namespace vidlake
