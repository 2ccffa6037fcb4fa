// The read planner: which packets a read of some frames must decode, in which
// spans, and which byte ranges those packets occupy. It runs before any byte is
// fetched, so remote sources can fetch exactly (and only) these ranges.
#pragma once

#include <cstdint>
#include <vector>

#include "byte_source.h"
#include "packet_index.h"

namespace vidlake {

// One decode run: start at packet `start` (a keyframe, or 0), feed packets up to
// `end` (inclusive) at most, and emit `frames` (ascending frame numbers).
struct Span {
  int32_t start = 0;
  int32_t end = 0;
  std::vector<int32_t> frames;
};

// Note [Span grouping]
// Frames are visited in presentation order. A frame f needs packets
// [start_packet_for(f), needed_until[f]]. If f's start lies at or before the end
// of the current span, decoding on costs no more than seeking (the packets from
// f's start on must be decoded either way), so f joins the span; otherwise the
// packets between the span's end and f's keyframe would be decoded for nothing,
// and f opens a new span (a seek).
//
//   packets:  K0 ..... a ...... E0 ..... K1 ..... b ...
//             [ span 1: K0..E0 ]         [ span 2: K1..b ]
//
// No packet is decoded twice within one read.
std::vector<Span> plan_spans(const PacketIndex& index, const std::vector<int32_t>& sorted_unique_frames);

// The byte ranges of packets [first, last], coalesced when closer than `gap`.
std::vector<ByteRange> packet_byte_ranges(const PacketIndex& index, int32_t first, int32_t last, int64_t gap);

}  // namespace vidlake
