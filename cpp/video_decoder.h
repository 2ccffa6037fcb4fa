// The decoder loop: plans a read from the index, decodes its spans (feeding
// exactly the needed packets through cpp/packet_feeder.*), identifies each
// emitted frame and converts only the wanted ones into their output rows. One
// VideoDecoder may be used from many threads: each call takes a decoder state
// from a small pool of parked states.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "byte_source.h"
#include "frame_converter.h"
#include "packet_index.h"
#include "read_plan.h"

namespace vidlake {

struct DecoderOptions {
  int threads = 0;           // codec threads; 0 = one per core (at most 16)
  // Skip unwanted non-reference frames where that is exact (Note [Skipping
  // non-reference frames]); the one default, also of _core.Decoder and VideoReader.
  bool skip_nonref = true;
  // Bytes of decoder memory parked states may hold (Note [Parked decoders]);
  // -1: the process default (default_decoder_memory_budget()).
  int64_t memory_budget = -1;
};

// The process-wide budget for a reader's parked decoder states, used by every
// decoder without its own: bytes >= 0 is strict (0: park nothing); -1 restores
// the built-in one, kDefaultParkBytes with at least one state kept parked.
void set_default_decoder_memory_budget(int64_t bytes);
int64_t default_decoder_memory_budget();  // -1: the built-in one
constexpr int64_t kDefaultParkBytes = 160LL * 1024 * 1024;

// Note [The process's parked decoders]: a budget in bytes for the parked states of
// every decoder of the process together (-1: none, the default; 0: park nothing).
// Over it, after a read, the least recently read decoders give back their parked
// states first, then the reader itself its oldest ones. Each decoder's own budget
// still applies.
void set_total_decoder_memory_budget(int64_t bytes);
int64_t total_decoder_memory_budget();  // -1: none
struct ParkedTotals {
  int64_t decoders = 0;         // decoders (readers) alive in this process
  int64_t parked_decoders = 0;  // their parked states
  int64_t parked_bytes = 0;     // and the states' estimated memory
  int64_t shed_decoders = 0;    // states closed for the total budget since the process started
};
ParkedTotals parked_decoder_totals();

struct DecodeStats {
  int64_t packets_decoded = 0;   // packets sent to the decoder
  int64_t frames_decoded = 0;    // frames the decoder emitted
  int64_t frames_converted = 0;  // frames colour-converted into output
  // Frames the decoder emitted that the read did not return (Note [Skipped
  // frames]): those before a wanted frame after a seek, between strided frames,
  // lookahead past the last one. frames_decoded == frames_converted + frames_skipped.
  int64_t frames_skipped = 0;
  int64_t spans = 0;             // decode spans planned
  int64_t seeks = 0;             // decoder restarts at a keyframe
  int64_t forward_decodes = 0;   // spans served by decoding on without a seek
  int64_t retries = 0;           // restarts from an earlier keyframe (frame not emitted)
  int64_t decode_errors = 0;     // packets the decoder rejected (damaged data)
  int64_t bytes_read = 0;        // bytes fetched from the source
  int64_t decoders = 0;          // decoder states alive now, parked or busy (not a counter)
  int64_t parked_decoders = 0;   // of those, parked between reads (not a counter)
  int64_t parked_bytes = 0;      // their estimated memory (Note [Parked decoders]; not a counter)
  std::map<std::string, int64_t> as_map() const;
};

class VideoDecoder {
 public:
  VideoDecoder(std::shared_ptr<ByteSource> source, std::shared_ptr<const PacketIndex> index, DecoderOptions options);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  // Decodes frames[i] (presentation numbers, validated by the caller) into
  // out + i * layout.frame_bytes(). Duplicates are decoded and converted once.
  // `resident_output`: out's pages are known to be in memory already (a
  // recycled block, Note [Recycled output buffers]), so they are not prefaulted.
  void get_frames(const std::vector<int32_t>& frames, const OutputLayout& layout, uint8_t* out,
                  bool resident_output = false);

  DecodeStats stats();
  void reset_stats();
  // Closes the idle (parked) states beyond the `keep` most recently used, which
  // frees their memory; states busy in other threads' reads are not touched.
  void trim(int keep);
  // The budget in bytes this decoder's parked states keep to; `keep_one`: the
  // built-in default, under which the most recently used state stays parked
  // even when it alone is larger.
  int64_t memory_budget(bool* keep_one = nullptr) const;
  // Estimated memory of one state: its reference pictures and one per thread.
  int64_t state_bytes(int threads) const;
  // Note [The process's parked decoders]: closes this decoder's parked states
  // (the least recently used first) until `excess` bytes are freed, without
  // waiting for a read in progress (its pool busy: nothing is closed). Returns
  // the states closed (moved to `closed`, for the caller to destroy unlocked).
  struct State;
  int64_t shed(int64_t excess, std::vector<std::unique_ptr<State>>& closed);
  const PacketIndex& index() const { return *index_; }
  const std::string& name() const { return source_->name(); }

 private:
  // Tells the process's ledger this decoder's parked bytes and enforces the total
  // budget (call with no pool lock held).
  void report_parked();
  void forget_parked();  // leaves the ledger (the destructor)
  std::unique_ptr<State> acquire(const Span& first_span, bool light);
  // Counts a new state and opens it with the pool lock released.
  std::unique_ptr<State> open_state(std::unique_lock<std::mutex>& lock, bool slice, bool light);
  void release(std::unique_ptr<State> state);

  std::shared_ptr<ByteSource> source_;
  std::shared_ptr<const PacketIndex> index_;
  DecoderOptions options_;
  bool remote_;
  // The parked states with their lock, made in one process generation; a
  // forked child sets its parent's aside (Note [Objects inherited through fork]).
  struct Pool;
  Pool& pool();
  std::atomic<Pool*> pool_{nullptr};
  // Note [Damaged streams]: error concealment depends on the thread
  // configuration, so once a stream shows damage (at index time or as a decode
  // error) every decoder of it runs single-threaded, like the reference decode.
  std::atomic<bool> slice_only_{false};
  int64_t bytes_at_reset_ = 0;
  bool light_reads_ = false;  // Note [Light reads]
  int64_t picture_bytes_ = 0;  // Note [Parked decoders]: one decoded picture
  int default_threads_ = 1;     // codec threads of a state that is not light

 public:
  struct Counters {
    std::atomic<int64_t> packets{0}, frames{0}, converted{0}, skipped{0}, spans{0}, seeks{0}, forward{0}, retries{0}, errors{0};
  };

 private:
  Counters counters_;
};

}  // namespace vidlake
