// Keyframes-only decoding (vidlake.curate's fast candidate path): each wanted
// keyframe is decoded from its own packet alone, so a keyframes-only pass over a
// video costs one intra decode per GOP instead of decoding every frame.
#pragma once

#include <cstdint>
#include <vector>

#include "byte_source.h"
#include "frame_converter.h"
#include "packet_index.h"

namespace vidlake {

struct KeyframeStats {
  int64_t packets_decoded = 0;   // packets sent to the decoder (one per wanted keyframe)
  int64_t frames_decoded = 0;    // frames the decoder emitted
  int64_t frames_converted = 0;  // frames colour-converted into output
};

// Note [Keyframes alone]
// A keyframe packet decodes without any earlier packet (that is what the index
// flags mean: a read may start there). For each wanted frame: position the
// packet feeder on its packet (the in-band state the keyframe lacks is prepended,
// Note [Replayed in-band state]), send that one packet, drain, flush. Nothing
// else of the GOP is read or decoded. A decoder may decline to emit such a
// picture on its own (an H.264 recovery-point I-frame whose recovery count is
// not zero, say): produced[i] is then 0 and the caller reads that frame the
// ordinary way, as it is for a container keyframe a decode cannot start from
// (kPacketNotSeekable). frames[i] must be frames whose own packet the container
// flags as a keyframe (ArgumentError otherwise); output row i gets frames[i].
KeyframeStats decode_keyframes(ByteSource& source, const PacketIndex& index, const std::vector<int32_t>& frames,
                               const OutputLayout& layout, uint8_t* out, uint8_t* produced, int threads);

}  // namespace vidlake
