// Note [Index from the container's tables]
//
// An MP4/MOV file keeps everything the packet index needs (sample sizes, chunk
// offsets, decode times, composition offsets, sync samples, edit lists; for
// fragmented files the moof/trun boxes) outside the sample payloads:
//
//   ftyp | mdat [payload ......................................] | moov [tables]
//   ftyp | moov | moof [trun] | mdat [payload] | moof | mdat | ... | mfra
//
// Rather than re-implementing libavformat's mov demuxer (its edit-list and
// ctts rules are subtle, and the index must equal the full demux's field for
// field), vidlake lets that demuxer run as usual over a TablesOnlySource: the
// top-level boxes are found with a few small ranged reads (scan_mp4_layout),
// every box outside an `mdat` body is read for real, and reads inside an
// `mdat` body return zeros without touching the source. The demuxer then
// reports the same pts, dts, duration, size, position and flags as on the
// real file, having fetched only the headers.
//
// What only the payload knows is read sparingly by the index builder
// (index_builder.cpp): the head of each keyframe sample (in-band parameter sets
// and SEI, and whether the access unit is a clean random access point). Every
// other sample counts as one frame, which ISO/IEC 14496-15 guarantees for the
// codecs the tables path accepts (one access unit per sample).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "byte_source.h"

namespace vidlake {

// What a tables scan found: the payload ranges read as zeros, the header bytes read for real.
// scan_mp4_layout fills it for ISO-BMFF, scan_mkv_layout (mkv_layout.h) for Matroska/WebM.
struct TablesLayout {
  std::vector<ByteRange> payload;               // mdat bodies (Matroska: frame data), in file order
  std::map<int64_t, std::string> prefetched;    // start offset -> bytes read while scanning
  int64_t header_bytes = 0;                     // bytes the scan fetched
  int boxes = 0;                                // top-level boxes (Matroska: elements) seen
  bool fragmented = false;                      // a top-level moof: samples the moov does not list
};

// The top-level box layout of an ISO-BMFF file, or nothing when `source` is not
// one (or its boxes do not tile the file). Reads box headers only, plus every
// non-mdat box whole (moov, moof, ...), each with one ranged read.
std::optional<TablesLayout> scan_mp4_layout(ByteSource& source);

// Note [Table entry counts]: libavformat's mov demuxer sizes its arrays for the
// entry count a table box states before it reads the entries, and reads entries
// until the end of the file, not of the box: composition offsets (ctts, 8 bytes an
// entry), chunk offsets, sample-to-chunk, sync samples, sample groups, fragment
// runs (trun: index entries of 24 bytes and composition offsets), and from a
// constant sample size in stsz the index of every sample. A 5 KB fragmented file
// whose trun said 83,886,085 samples took 2.7 GB of memory and 6 s to open; a
// 1.6 KB file whose ctts said 134,217,731 entries asked for 1.1 GB, and three such
// arrays took 2.9 GB in CI (container_fuzzer, FFmpeg 5.1). So before libavformat
// opens an ISO-BMFF file every table box it would parse is checked: the entries
// must fit in the box; a trun without per-sample fields (all samples take tfhd's
// defaults) and a constant-size stsz need one byte (stsz: the sample size) per
// sample in the file. The walk follows the demuxer's own rules: boxes tile their
// parent and a child that overruns it is cut at the parent's end; it enters every
// box the demuxer parses children of (moov, trak, mdia, minf, stbl, edts, dinf,
// udta, mvex, moof, traf, mfra, sinf, schi, wave, hoov, meta after its hdlr, and
// the child boxes of video and audio sample entries in stsd), wherever they sit,
// since the demuxer applies a table box to the last track whatever its parent.
// A compressed movie header (cmov) would hide its tables from the walk and is
// refused. Two boxes the demuxer does not cut are refused when they overrun: a
// sample entry larger than the rest of its stsd, and a top-level box the walk
// reads that runs past the end of the file (the boxes inside either are bounded
// only by its own size: a 1.5 KB file's avc1 entry saying 4 GB made libavformat
// ask for 707 MB of avcC extradata). A box that fails is a damaged file (DecodeError naming the file, the
// box, its offset and the counts).
//
// Throws DecodeError when the top-level box `box` (`len` bytes read at file offset
// `pos`, of a file of `file_size` bytes) is, or holds, a table box that fails.
void check_box_tables(const uint8_t* box, int64_t len, int64_t pos, int64_t file_size, const std::string& name);

// The same for every top-level box of `source` the demuxer would parse tables
// from (box headers read, and each such box whole), whatever the file's first box
// says: the demuxer's probe accepts a damaged ftyp. scan_mp4_layout checks the
// boxes it reads itself.
void check_mp4_tables(ByteSource& source);

// `inner` with every payload range (mdat body, Matroska frame data) read as zeros
// (Note [Index from the container's tables]).
class TablesOnlySource : public ByteSource {
 public:
  TablesOnlySource(ByteSource& inner, TablesLayout layout);
  int64_t size() const override { return inner_.size(); }
  int64_t read_at(int64_t offset, uint8_t* dst, int64_t len) override;
  // Bytes read for [offset, offset + data.size()) inside a payload, handed out instead of zeros.
  void overlay(int64_t offset, std::string data) { overlays_[offset] = std::move(data); }
  void clear_overlays() { overlays_.clear(); }
  bool fragmented() const { return layout_.fragmented; }
  const std::string* overlay_at(int64_t offset) const {
    auto it = overlays_.find(offset);
    return it == overlays_.end() ? nullptr : &it->second;
  }
  // Bytes fetched from `inner` (scan included); zeros handed out are not counted.
  int64_t fetched() const { return fetched_; }
  int64_t zeroed() const { return zeroed_; }

 private:
  int64_t copy_real(int64_t offset, uint8_t* dst, int64_t len);
  ByteSource& inner_;
  TablesLayout layout_;
  std::map<int64_t, std::string> overlays_;  // non-overlapping
  int64_t fetched_ = 0;
  int64_t zeroed_ = 0;
};

}  // namespace vidlake
