// libFuzzer harness: video container bytes are untrusted input (docs/DESIGN.md,
// "Threat model"). The index builder parses them itself before libavformat does:
// the MP4/MOV box scan (cpp/mp4_layout.cpp), the Matroska/WebM element and block
// header walk (cpp/mkv_layout.cpp), the keyframe heads and first slices of the
// tables path and the NAL walk of "checked" mode (cpp/index_builder.cpp).
//
// Each input is one selector byte followed by the bytes of a video file. The
// selector picks the index mode (auto, tables, checked, demux: the modes of
// vidlake._core.Index.build) and the source (file bytes in memory; a range source
// that is local, like a dataset on disk; a remote one, like S3 or HTTP, where
// "auto" takes the tables path). The index is built through build_index, as the
// Python API builds it; if it is accepted it must serialise and load again
// unchanged, and its first and last frames are decoded. Only vidlake's own
// exceptions may come out; any other exception, sanitizer report, hang or
// out-of-memory is a finding.
//
// Seeds are tiny videos fuzz/make_container_seeds.sh cuts or encodes with the
// ffmpeg CLI at run time (never committed); fuzz/regressions-container holds the
// crashers found, kept after their fix.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "byte_source.h"
#include "errors.h"
#include "index_builder.h"
#include "index_validate.h"
#include "packet_index.h"
#include "video_decoder.h"

using namespace vidlake;

namespace {

constexpr IndexMode kModes[] = {IndexMode::kAuto, IndexMode::kTables, IndexMode::kChecked, IndexMode::kDemux};
constexpr int kNumModes = 4;

// The pictures a fuzz input may make the decoder produce: larger frames are legitimate (a
// 16384 x 16384 video is slow because it is big, out of scope in the threat model) and would
// only slow the run down, so the index is still built and checked but not decoded.
constexpr int64_t kMaxDecodePixels = int64_t{1920} * 1088;

// Like a dataset's ChunkRangeSource or a remote object: ranges fetched by a callback
// (CallbackSource clips them to the size first). `local` chooses the builder's and the
// decoder's local or remote behaviour.
std::shared_ptr<ByteSource> range_source(const std::string& bytes, bool local) {
  const std::string* v = &bytes;
  auto fetch = [v](const std::vector<ByteRange>& ranges) {
    std::vector<std::string> out;
    for (const ByteRange& r : ranges) {
      if (r.start >= r.end) {
        out.emplace_back();
      } else {
        out.push_back(v->substr(static_cast<size_t>(r.start), static_cast<size_t>(r.end - r.start)));
      }
    }
    return out;
  };
  return std::make_shared<CallbackSource>(fetch, static_cast<int64_t>(v->size()),
                                          local ? "fuzz.input (local ranges)" : "fuzz.input (remote ranges)", local);
}

void exercise(const PacketIndex& built, const std::shared_ptr<ByteSource>& src) {
  // An index the builder accepts is one a dataset stores: it must load again, unchanged.
  const std::string bytes = built.serialize();
  PacketIndex idx;
  try {
    idx = PacketIndex::deserialize(bytes);
  } catch (const IndexFormatError& e) {
    // The two refusals left to the store (vidlake/htypes/video.py storable_index refuses the
    // append by name): frame timestamps from a decode (no usable container pts) that repeat or go
    // backwards, and a codec outside the stored-index list (e.g. msrle: VideoReader reads any
    // video codec FFmpeg decodes from its file). The video still reads from its file, so it is
    // read below.
    const bool decode_order_pts = !built.pts_from_container &&
                                  std::strstr(e.what(), "pts' does not follow the previous frame's") != nullptr;
    const bool file_only_codec = !index_codec_allowed(built.info.codec_id) &&
                                 std::strstr(e.what(), "not a video codec vidlake reads from a stored index") != nullptr;
    if (!decode_order_pts && !file_only_codec) {
      std::fprintf(stderr, "container_fuzzer: the built index does not load again: %s\n", e.what());
      std::abort();
    }
    idx = built;
  }
  if (idx.serialize() != bytes) {  // (idx is `built` itself when the loader refused it)
    std::fprintf(stderr, "container_fuzzer: the built index changes when loaded again\n");
    std::abort();
  }
  const int32_t n = idx.num_frames();
  if (n <= 0) {
    std::fprintf(stderr, "container_fuzzer: an index without frames was accepted\n");
    std::abort();
  }
  if (static_cast<int64_t>(idx.info.width) * idx.info.height > kMaxDecodePixels) return;
  auto shared = std::make_shared<const PacketIndex>(std::move(idx));
  DecoderOptions opt;
  opt.threads = 1;
  VideoDecoder dec(src, shared, opt);
  OutputLayout layout;  // a small output whatever the video's size: the decoder scales
  layout.height = 16;
  layout.width = 16;
  std::vector<int32_t> frames{0};
  if (n > 1) frames.push_back(n - 1);
  std::vector<uint8_t> out(static_cast<size_t>(layout.frame_bytes()) * frames.size());
  dec.get_frames(frames, layout, out.data());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  av_log_set_level(AV_LOG_QUIET);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const IndexMode mode = kModes[data[0] % kNumModes];
  const int kind = (data[0] / kNumModes) % 3;  // 0 memory, 1 local ranges, 2 remote ranges
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  std::shared_ptr<ByteSource> src;
  if (kind == 0) {
    src = std::make_shared<MemorySource>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                         static_cast<int64_t>(bytes.size()), nullptr, "fuzz.input");
  } else {
    src = range_source(bytes, kind == 1);
  }
  try {
    const PacketIndex idx = build_index(*src, -1, mode);
    exercise(idx, src);
  } catch (const DecodeError&) {  // includes UnsupportedError
  } catch (const FrameIndexError&) {
  } catch (const ArgumentError&) {
  }
  return 0;
}
