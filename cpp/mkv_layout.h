// Note [Matroska index from the block headers]
//
// Matroska/WebM has no sample table: the only complete list of frames is the
// clusters themselves. But every frame is framed by a few header bytes, and the
// payload after them is opaque to the demuxer:
//
//   EBML | Segment [ SeekHead | Info | Tracks | Cluster [ Timestamp | SimpleBlock
//          [id size | track timecode flags (lacing sizes) | frame data .........]
//          | BlockGroup [ Block [...] | ReferenceBlock | BlockDuration ] | ... ]
//          | Cluster ... | Cues | Tags ]
//
// scan_mkv_layout walks that structure with ranged reads: every top-level element
// but a Cluster is read whole; inside each Cluster every child's header is read,
// small children whole, and for a SimpleBlock or Block just its block header
// (track number, timecode, flags and lacing sizes). The frame data after a block
// header, and the body of a Void element, become payload ranges that a
// TablesOnlySource (mp4_layout.h) serves as zeros, so libavformat's own Matroska
// demuxer runs over the file as usual and reports the same packets (pts, dts,
// duration, size, flags) as the full demux: the index builder
// (index_builder.cpp) takes the packet offset from the layout's block records.
//
// Reads. Known-size clusters are found by hopping from one cluster header to the
// next (one small read each, except at the clusters the Cues list: their first
// bytes are fetched together beforehand), then walked all at once: each round fetches the
// next window of every unfinished cluster in one batched read_ranges call. A
// window is adaptive per cluster: it doubles (up to 256 KB) while the headers it
// holds are packed close (small frames share a request) and halves (down to 1 KB)
// when a frame runs past it, so a large frame costs one small read. An unknown-
// size cluster (live recording) is walked on the spot until the next top-level
// element. The scan gives up (nothing returned: the caller demuxes fully, or
// raises for mode "tables") on anything it cannot mirror exactly: an element past
// the end of its parent or of the file (a truncated recording), an encrypted
// block, a lacing that does not add up, an unknown element inside an unknown-size
// cluster, more than 64 MB of headers when that is over a quarter of the file.
//
// What the payload knows (key flags set by the H.264 parser, in-band parameter
// sets, clean random access) is read the way Note [Keyframe heads] describes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "byte_source.h"
#include "mp4_layout.h"

namespace vidlake {

struct MkvBlock {
  int64_t pos = 0;      // start of the block's body (the track number): the demuxer's pkt->pos
  int64_t data = 0;     // first byte of frame data
  int64_t size = 0;     // bytes of frame data (all laces)
  uint64_t track = 0;   // TrackNumber
  int laces = 1;        // frames in the block
  bool key = false;     // SimpleBlock key flag; BlockGroup: no ReferenceBlock
  std::string head;     // the first bytes of frame data that the scan's read held (up to 256)
};

struct MkvLayout {
  TablesLayout tables;
  std::vector<MkvBlock> blocks;  // sorted by pos
  int clusters = 0;
  int requests = 0;              // read calls the scan made (read_at or one batched read_ranges)
  // The block whose body starts at `pos`, or nullptr.
  const MkvBlock* block_at(int64_t pos) const;
};

// The element layout of a Matroska/WebM file, or nothing when `source` is not one
// or has a structure the tables path does not mirror exactly (see the Note). With
// `video_codecs` (Matroska CodecIDs), nothing either, before any cluster is read,
// when the Tracks element lists no video track using one of them (a track with
// ContentEncodings never matches).
std::optional<MkvLayout> scan_mkv_layout(ByteSource& source, const std::vector<std::string>& video_codecs = {});

}  // namespace vidlake
