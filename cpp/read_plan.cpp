#include "read_plan.h"

#include <algorithm>

namespace vidlake {

std::vector<Span> plan_spans(const PacketIndex& index, const std::vector<int32_t>& frames) {
  std::vector<Span> spans;
  for (int32_t f : frames) {
    const int32_t start = index.start_packet_for(f);
    const int32_t end = index.needed_until[static_cast<size_t>(f)];
    if (!spans.empty() && start <= spans.back().end) {
      Span& s = spans.back();
      s.start = std::min(s.start, start);
      s.end = std::max(s.end, end);
      s.frames.push_back(f);
    } else {
      spans.push_back(Span{start, end, {f}});
    }
  }
  return spans;
}

std::vector<ByteRange> packet_byte_ranges(const PacketIndex& index, int32_t first, int32_t last, int64_t gap) {
  std::vector<ByteRange> ranges;
  for (int32_t p = first; p <= last; ++p) {
    const PacketRecord& r = index.packets[static_cast<size_t>(p)];
    if (r.size > 0) ranges.push_back(ByteRange{r.offset, r.offset + r.size});
  }
  return merge_ranges(std::move(ranges), gap);
}

}  // namespace vidlake
