// A stored packet index is untrusted input (a dataset from someone else, a
// file of index bytes): every field is checked once, when it is loaded, against
// what vidlake's own index builder can produce, so nothing later (the planner,
// the decoder loop, libavcodec) ever sees a value it was not written for.
// See docs/DESIGN.md, "Threat model".
#pragma once

#include <cstdint>
#include <string>

#include "packet_index.h"

namespace vidlake {

// Largest byte offset, size, timestamp or duration an index may hold (2^53:
// 8 PiB, or 285 years at a 1 GHz time base), so sums of two never overflow.
constexpr int64_t kIndexMaxValue = int64_t{1} << 53;
// Largest frame side the decoder is asked for (FFmpeg's own limit is similar).
constexpr int32_t kIndexMaxSide = 16384;

// Throws IndexFormatError naming the field and why it is refused when `index`
// is not one the index builder could have written. O(packets + frames).
void validate_index(const PacketIndex& index);

// Throws IndexFormatError when a contiguous index names bytes past the end of
// a source of `source_size` bytes (a sample shorter than its index).
void check_index_fits(const PacketIndex& index, int64_t source_size, const std::string& source_name);

// Throws UnsupportedError naming the source and the field when the builder read a stream
// description (frame size, depth, colour, rates, ...) that validate_index would refuse once
// stored, so no index is built that cannot be loaded again. The codec is not checked: a video
// of another codec is still read from its file.
void check_built_stream(const StreamInfo& info, const std::string& source_name);

// True for the codecs whose streams an index may describe (see the .cpp).
bool index_codec_allowed(int32_t codec_id);

}  // namespace vidlake
