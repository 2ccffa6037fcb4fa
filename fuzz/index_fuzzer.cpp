// libFuzzer harness: a stored packet index is untrusted input (docs/DESIGN.md,
// "Threat model"). Each input is one selector byte (which seed video, which
// kind of source) followed by packet-index bytes. The index is deserialised
// (and so validated); if it is accepted it is planned and decoded against the
// real bytes of the selected seed video, through a memory source or through a
// range source like a dataset's. Any exception other than vidlake's own, any
// sanitizer report, hang or crash is a finding.
//
// Seed videos: VIDLAKE_FUZZ_VIDEOS, a ':'-separated list of files (fuzz/run.sh
// passes the ones in fuzz/seed_videos.txt, from the shared test data). With
// VIDLAKE_FUZZ_MAKE_SEEDS=DIR the binary writes one seed input per video (its
// real index) into DIR and exits.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include <libavutil/log.h>
}

#include "byte_source.h"
#include "errors.h"
#include "index_builder.h"
#include "packet_index.h"
#include "read_plan.h"
#include "video_decoder.h"

using namespace vidlake;

namespace {

std::vector<std::string> g_names;
std::vector<std::string> g_videos;  // file bytes, loaded once

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::shared_ptr<ByteSource> memory_source(size_t k) {
  const std::string& v = g_videos[k];
  return std::make_shared<MemorySource>(reinterpret_cast<const uint8_t*>(v.data()), static_cast<int64_t>(v.size()),
                                        nullptr, g_names[k]);
}

// Like a dataset's ChunkRangeSource: ranges fetched by a callback. `local`
// chooses the decoder's local read-ahead or its remote windowed path.
std::shared_ptr<ByteSource> range_source(size_t k, bool local) {
  const std::string* v = &g_videos[k];
  auto fetch = [v](const std::vector<ByteRange>& ranges) {
    std::vector<std::string> out;
    for (const ByteRange& r : ranges) {
      if (r.start < 0 || r.end > static_cast<int64_t>(v->size()) || r.start > r.end) {
        throw DecodeError("range outside the sample");  // as ChunkRangeSource refuses it
      }
      out.push_back(v->substr(static_cast<size_t>(r.start), static_cast<size_t>(r.end - r.start)));
    }
    return out;
  };
  return std::make_shared<CallbackSource>(fetch, static_cast<int64_t>(v->size()), g_names[k] + " (ranges)", local);
}

void exercise(const PacketIndex& idx, const std::shared_ptr<ByteSource>& src) {
  // What the binding reads of an index without decoding (metadata, planning).
  const int32_t n = idx.num_frames();
  (void)idx.keyframe_frames();
  std::vector<int32_t> frames{0, n / 2, n - 1};
  std::vector<int32_t> unique{0};
  if (n / 2 > 0) unique.push_back(n / 2);
  if (n - 1 > n / 2) unique.push_back(n - 1);
  for (const Span& s : plan_spans(idx, unique)) (void)packet_byte_ranges(idx, s.start, s.end, 0);
  // The re-serialised index must load again, unchanged.
  const std::string again = idx.serialize();
  if (PacketIndex::deserialize(again).serialize() != again) abort();

  auto shared = std::make_shared<const PacketIndex>(idx);
  DecoderOptions opt;
  opt.threads = 1;
  VideoDecoder dec(src, shared, opt);
  OutputLayout layout;  // small output whatever the index claims: the decoder scales
  layout.height = 16;
  layout.width = 16;
  std::vector<uint8_t> out(static_cast<size_t>(layout.frame_bytes()) * frames.size());
  dec.get_frames(frames, layout, out.data());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  av_log_set_level(AV_LOG_QUIET);
  const char* list = std::getenv("VIDLAKE_FUZZ_VIDEOS");
  if (list == nullptr || *list == '\0') {
    std::fprintf(stderr, "index_fuzzer: set VIDLAKE_FUZZ_VIDEOS to ':'-separated seed video paths\n");
    std::exit(2);
  }
  std::stringstream ss(list);
  std::string path;
  while (std::getline(ss, path, ':')) {
    if (path.empty()) continue;
    std::string bytes = read_file(path);
    if (bytes.empty()) {
      std::fprintf(stderr, "index_fuzzer: cannot read %s\n", path.c_str());
      std::exit(2);
    }
    g_names.push_back(path.substr(path.find_last_of('/') + 1));
    g_videos.push_back(std::move(bytes));
  }
  if (const char* dir = std::getenv("VIDLAKE_FUZZ_MAKE_SEEDS")) {
    for (size_t k = 0; k < g_videos.size(); ++k) {
      PacketIndex idx = build_index(*memory_source(k), -1);
      const std::string file = std::string(dir) + "/seed-" + g_names[k];
      std::ofstream f(file, std::ios::binary);
      f.put(static_cast<char>(k));
      f << idx.serialize();
    }
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || g_videos.empty()) return 0;
  const size_t k = data[0] % g_videos.size();
  const int mode = (data[0] / g_videos.size()) % 3;  // 0 memory, 1 local ranges, 2 remote ranges
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const PacketIndex idx = PacketIndex::deserialize(bytes);
    exercise(idx, mode == 0 ? memory_source(k) : range_source(k, mode == 1));
  } catch (const IndexFormatError&) {
  } catch (const DecodeError&) {      // includes UnsupportedError
  } catch (const FrameIndexError&) {
  } catch (const ArgumentError&) {
  }
  return 0;
}
