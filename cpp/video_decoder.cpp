#include "video_decoder.h"

#include <algorithm>
#include <cstring>
#ifdef VIDLAKE_HAVE_MALLOC_TRIM
#include <malloc.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
#include <unordered_map>
#include <utility>
#include <unordered_set>

#include "codec_open.h"
#include "errors.h"
#include "fork_guard.h"
#include "ffmpeg_util.h"
#include "index_validate.h"
#include "output_prefault.h"
#include "packet_feeder.h"
#include "read_plan.h"

namespace vidlake {

namespace {

constexpr int kMaxDecoderStates = 8;
constexpr double kLightReadPixels = 640.0 * 480.0;   // see Note [Light reads]
constexpr double kLightReadBitsPerPixel = 0.3;
constexpr int64_t kParkedPictures = 10;  // see Note [Parked decoders]
std::atomic<int64_t> g_park_budget{-1};  // set_default_decoder_memory_budget
constexpr int64_t kPrefaultBytes = 64LL * 1024 * 1024;  // see Note [Prefaulting the output]

}  // namespace

void set_default_decoder_memory_budget(int64_t bytes) { g_park_budget = bytes < 0 ? -1 : bytes; }
int64_t default_decoder_memory_budget() { return g_park_budget.load(); }

std::map<std::string, int64_t> DecodeStats::as_map() const {
  return {{"packets_decoded", packets_decoded}, {"frames_decoded", frames_decoded},
          {"frames_converted", frames_converted}, {"frames_skipped", frames_skipped},
          {"spans", spans},
          {"seeks", seeks}, {"forward_decodes", forward_decodes},
          {"retries", retries}, {"decode_errors", decode_errors},
          {"bytes_read", bytes_read}, {"decoders", decoders},
          {"parked_decoders", parked_decoders}, {"parked_bytes", parked_bytes}};
}

struct VideoDecoder::State {
  State(const PacketIndex& index, ByteSource& source, int threads, bool slice, bool light_read)
      : codec(open_codec(index, light_read ? 1 : threads, slice, source.name())), feeder(index, source),
        frame(make_frame()), packet(make_packet()), slice_only(slice), light(light_read) {}
  CodecContextPtr codec;
  PacketFeeder feeder;
  FramePtr frame;
  PacketPtr packet;
  FrameConverter converter;
  bool slice_only;
  bool light;               // one codec thread, for single-frame reads of light streams
  int64_t bytes = 0;        // estimated memory (Note [Parked decoders]), set by the VideoDecoder
  int32_t run_start = -1;   // packet the current decode run started from; -1: fresh
  int32_t next_packet = 0;  // next packet to feed
  int32_t last_frame = -1;  // last frame number emitted in this run
  bool drained = false;
  std::unordered_set<int32_t> skipped;  // frames fed with skip_frame=NONREF in this run
};

struct VideoDecoder::Pool {
  explicit Pool(uint64_t gen) : generation(gen) {}
  const uint64_t generation;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::unique_ptr<State>> idle;  // parked, least recently used first
  int64_t idle_bytes = 0;                     // sum of their estimated bytes
  int live = 0;
  std::unique_ptr<State> take(size_t i) {
    std::unique_ptr<State> s = std::move(idle[i]);
    idle.erase(idle.begin() + static_cast<long>(i));
    idle_bytes -= s->bytes;
    return s;
  }
};

// Note [The process's parked decoders]
//
// Each decoder keeps its parked states within its own budget (Note [Parked
// decoders]); a process holding many readers at once (50 open videos read in
// turn: 1.7 GB in bench/many_videos.py) can still hold many budgets' worth. The
// ledger knows every decoder's parked bytes, as each reported them after its last
// read, trim or construction, and in what order they were last read. With a total
// budget set, a report that puts the total over it makes the least recently read
// decoders close their parked states (oldest first) until it fits, and then, if
// still over, the reporting decoder its own oldest. A decoder whose pool is busy
// (a read in another thread) is skipped: nothing waits. Lock order: the ledger's,
// then a pool's (a pool lock is never held while the ledger's is taken). The
// ledger's lock is held while a report reads its own pool's figures, while another
// decoder's pool is try-locked and while the states it gave up are closed, so
// that decoder cannot be destroyed meanwhile (its destructor takes the ledger's
// lock to leave it). Held across fork; a forked child starts an empty ledger (its
// inherited decoders' states are set aside, Note [Objects inherited through fork]).
// Closing a state may log: the ledger's lock is taken before the log buffer's,
// never after (the log buffer's atfork handler is registered first, at import).
namespace {

struct LedgerEntry {
  int64_t bytes = 0;
  int64_t states = 0;
  uint64_t tick = 0;
};

struct Ledger {
  std::mutex mutex;
  uint64_t generation = 0;
  std::unordered_map<const VideoDecoder*, LedgerEntry> entries;
  int64_t bytes = 0, states = 0, shed = 0;
  uint64_t tick = 0;
  std::atomic<int64_t> budget{-1};
  // With the mutex held: a forked child forgets its parent's decoders' states.
  void sync() {
    const uint64_t gen = fork_generation();
    if (gen == generation) return;
    entries.clear();
    bytes = states = 0;
    generation = gen;
  }
};

Ledger& ledger() {
  static Ledger* const l = [] {
    auto* made = new Ledger();  // never destroyed: decoders may outlive static destruction
    made->generation = fork_generation();
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork([] { ledger().mutex.lock(); }, [] { ledger().mutex.unlock(); },
                   [] { ledger().mutex.unlock(); });
#endif
    return made;
  }();
  return *l;
}

}  // namespace

void set_total_decoder_memory_budget(int64_t bytes) { ledger().budget = bytes < 0 ? -1 : bytes; }
int64_t total_decoder_memory_budget() { return ledger().budget.load(); }

ParkedTotals parked_decoder_totals() {
  Ledger& l = ledger();
  std::lock_guard<std::mutex> lock(l.mutex);
  l.sync();
  ParkedTotals t;
  t.decoders = static_cast<int64_t>(l.entries.size());
  t.parked_decoders = l.states;
  t.parked_bytes = l.bytes;
  t.shed_decoders = l.shed;
  return t;
}

int64_t VideoDecoder::shed(int64_t excess, std::vector<std::unique_ptr<State>>& closed) {
  Pool& p = pool();
  int64_t freed = 0;
  {
    std::unique_lock<std::mutex> lock(p.mutex, std::try_to_lock);
    if (!lock.owns_lock()) return 0;  // a read is taking or parking a state: not now
    while (!p.idle.empty() && freed < excess) {
      closed.push_back(p.take(0));
      freed += closed.back()->bytes;
      --p.live;
    }
  }
  p.cv.notify_all();
  return freed;
}

void VideoDecoder::report_parked() {
  Pool& p = pool();
  Ledger& l = ledger();
  std::lock_guard<std::mutex> lock(l.mutex);
  l.sync();
  int64_t bytes = 0, states = 0;
  {
    // Read under the ledger's lock, so two reports of this decoder (two threads' reads) or a
    // shed by another decoder's report cannot leave an older figure in the ledger. Taking a
    // pool's lock after the ledger's is the one order used (no code takes them the other way).
    std::lock_guard<std::mutex> pool_lock(p.mutex);
    bytes = p.idle_bytes;
    states = static_cast<int64_t>(p.idle.size());
  }
  LedgerEntry& mine = l.entries[this];
  l.bytes += bytes - mine.bytes;
  l.states += states - mine.states;
  mine.bytes = bytes;
  mine.states = states;
  mine.tick = ++l.tick;
  const int64_t budget = l.budget.load();
  if (budget < 0 || l.bytes <= budget) return;
  std::vector<std::pair<uint64_t, const VideoDecoder*>> order;  // least recently read first, this one last
  for (const auto& [d, e] : l.entries) {
    if (e.bytes > 0) order.emplace_back(d == this ? UINT64_MAX : e.tick, d);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::unique_ptr<State>> closed;
  for (const auto& [tick, d] : order) {
    if (l.bytes <= budget) break;
    const size_t before = closed.size();
    const int64_t freed = const_cast<VideoDecoder*>(d)->shed(l.bytes - budget, closed);
    LedgerEntry& e = l.entries[d];
    const auto n = static_cast<int64_t>(closed.size() - before);
    e.bytes -= freed;
    e.states -= n;
    l.bytes -= freed;
    l.states -= n;
    l.shed += n;
  }
  if (closed.empty()) return;
  closed.clear();  // the ledger's lock keeps their decoders alive while they close
#ifdef VIDLAKE_HAVE_MALLOC_TRIM
  malloc_trim(0);  // as trim() does: their pictures were large blocks in the middle of the heap
#endif
}

void VideoDecoder::forget_parked() {
  Ledger& l = ledger();
  std::lock_guard<std::mutex> lock(l.mutex);
  l.sync();
  auto it = l.entries.find(this);
  if (it == l.entries.end()) return;
  l.bytes -= it->second.bytes;
  l.states -= it->second.states;
  l.entries.erase(it);
}

namespace {

// Note [Decoding on instead of seeking]: a decoder that has not been drained
// and started at or before this span's keyframe, whose position is not before
// that keyframe, and which has not yet emitted (nor skipped) any of this span's
// frames, emits exactly the frames a fresh run from the keyframe would: frames
// come out in presentation order, so every wanted frame is still ahead of it.
bool can_decode_on(const VideoDecoder::State& s, const Span& span) {
  if (s.run_start < 0 || s.drained || s.run_start > span.start || s.next_packet < span.start) return false;
  if (span.frames.front() <= s.last_frame) return false;
  for (int32_t f : span.frames) {
    if (s.skipped.count(f) != 0) return false;
  }
  return true;
}

// What one get_frames call wants and where each frame goes.
struct Target {
  std::vector<int64_t> rows;  // output rows of this frame (duplicates share one decode)
  size_t span = 0;            // the span that plans it
  bool done = false;
};
struct Request {
  const PacketIndex& index;
  const OutputLayout& layout;
  uint8_t* out;
  std::unordered_map<int32_t, Target> targets;
  size_t current_span = 0;
  std::string name;  // the source's, for errors
};

// Note [Resolution changes]: a stream may change its picture size mid-way (an in-band SPS
// with new dimensions in a TS recording of adaptive streaming, a concatenation). The index
// declares one size, the first frame's (codec parameters), and a read allocates its output
// from it. A frame of another size is never silently scaled to it: without size= the read
// fails, naming the frame and both sizes; with size=(h, w) every frame is scaled from its own
// size to (h, w) by the usual bilinear swscale conversion (what PyAV's reformat does).
void check_frame_size(const Request& req, const AVFrame* frame, int32_t f) {
  const int w0 = req.index.info.width;
  const int h0 = req.index.info.height;
  if (req.layout.explicit_size || (frame->width == w0 && frame->height == h0)) return;
  throw DecodeError(req.name + ": frame " + std::to_string(f) + " is " + std::to_string(frame->width) + "x" +
                    std::to_string(frame->height) + " but the stream declares " + std::to_string(w0) + "x" +
                    std::to_string(h0) +
                    " (its resolution changes mid-stream); read with size=(height, width) to scale "
                    "every frame to one size (bilinear)");
}

}  // namespace

VideoDecoder::VideoDecoder(std::shared_ptr<ByteSource> source, std::shared_ptr<const PacketIndex> index,
                           DecoderOptions options)
    : source_(std::move(source)),
      index_(std::move(index)),
      options_(options),
      remote_(dynamic_cast<CallbackSource*>(source_.get()) != nullptr &&
              !dynamic_cast<CallbackSource*>(source_.get())->local()),
      slice_only_(index_->damaged) {
  check_index_fits(*index_, source_->size(), source_->name());  // a stored index may name any bytes
  // Open one decoder now, so a bad codec fails at construction, not at first read.
  auto first = std::make_unique<Pool>(fork_generation());
  first->idle.push_back(std::make_unique<State>(*index_, *source_, options_.threads, slice_only_.load(), false));
  first->live = 1;
  pool_ = first.release();
  // Note [Light reads]: with frame threads, every frame costs a hand-over
  // between threads; when frames are small and cheap to decode that overhead
  // outweighs the parallelism for a read that converts one frame (measured:
  // 640x360 at ~0.05 bit/pixel, random frame 25 ms on one thread vs 30 ms on
  // two; 1280x720 or ~1 bit/pixel, one thread is 15-40% slower). Such reads
  // take a one-thread decoder state; reads of several frames keep the frame
  // threads, which overlap decoding with conversion.
  const StreamInfo& info = index_->info;
  const double pixels = static_cast<double>(info.width) * info.height;
  double bytes = 0;
  for (const PacketRecord& p : index_->packets) bytes += p.size;
  const double bits_per_pixel =
      index_->packets.empty() || pixels <= 0 ? 0 : 8.0 * bytes / static_cast<double>(index_->packets.size()) / pixels;
  light_reads_ = options_.threads != 1 && pixels > 0 && pixels <= kLightReadPixels &&
                 bits_per_pixel <= kLightReadBitsPerPixel && (options_.threads > 1 || default_threads() > 1);
  // Note [Parked decoders]: a state's memory is estimated from its reference
  // pictures and one picture per codec thread.
  int64_t picture = info.pix_fmt >= 0 ? av_image_get_buffer_size(static_cast<AVPixelFormat>(info.pix_fmt),
                                                                  info.width, info.height, 1)
                                      : -1;
  if (picture <= 0) picture = static_cast<int64_t>(pixels * 3);
  picture_bytes_ = std::max<int64_t>(1, picture);
  default_threads_ = options_.threads > 0 ? options_.threads : default_threads();
  Pool& p = *pool_.load();
  p.idle.front()->bytes = state_bytes(p.idle.front()->codec->thread_count);
  p.idle_bytes = p.idle.front()->bytes;
  bool keep_one = false;
  if (p.idle_bytes > memory_budget(&keep_one) && !keep_one) {  // a strict budget below one state
    p.idle.clear();
    p.idle_bytes = 0;
    p.live = 0;
  }
  report_parked();
}

int64_t VideoDecoder::state_bytes(int threads) const {
  return picture_bytes_ * (kParkedPictures + std::max(1, threads));
}

int64_t VideoDecoder::memory_budget(bool* keep_one) const {
  int64_t b = options_.memory_budget >= 0 ? options_.memory_budget : g_park_budget.load();
  if (keep_one != nullptr) *keep_one = b < 0;
  return b < 0 ? kDefaultParkBytes : b;
}

VideoDecoder::~VideoDecoder() {
  forget_parked();
  Pool* p = pool_.load();
  // Note [Objects inherited through fork]: a parent's pool is never closed here.
  if (p != nullptr && p->generation == fork_generation()) delete p;
}

VideoDecoder::Pool& VideoDecoder::pool() {
  Pool* p = pool_.load(std::memory_order_acquire);
  const uint64_t gen = fork_generation();
  if (p->generation == gen) return *p;
  // First use in a forked child: its parent's states (their codec threads are
  // not here) and lock (maybe held by a parent thread) are set aside, leaked.
  // Two threads of the child may get here at once: one pool wins.
  auto fresh = std::make_unique<Pool>(gen);
  if (pool_.compare_exchange_strong(p, fresh.get(), std::memory_order_acq_rel)) return *fresh.release();
  return *p;  // another thread installed this generation's pool
}

std::unique_ptr<VideoDecoder::State> VideoDecoder::acquire(const Span& first_span, bool light) {
  Pool& p = pool();
  std::unique_lock<std::mutex> lock(p.mutex);
  const bool slice = slice_only_.load();
  if (slice) light = false;
  for (;;) {
    // Drop idle states of the wrong threading mode (see Note [Damaged streams]).
    for (size_t i = p.idle.size(); i-- > 0;) {
      if (p.idle[i]->slice_only != slice) {
        p.take(i);
        --p.live;
      }
    }
    // Note [Parked decoders]: an idle state is a checkpoint: it can decode on
    // to any frame after its position in the same run. Take the one closest
    // before these frames; otherwise an unpositioned one, or a new one while
    // the pool may keep more parked, and only then restart the least recently
    // used (p.idle is in release order). Prefer the wanted thread mode
    // (Note [Light reads]) among those.
    long pick = -1;
    for (size_t i = 0; i < p.idle.size(); ++i) {
      if (can_decode_on(*p.idle[i], first_span) &&
          (pick < 0 || p.idle[i]->next_packet > p.idle[static_cast<size_t>(pick)]->next_packet)) {
        pick = static_cast<long>(i);
      }
    }
    auto unpositioned = [](const State& s) { return s.run_start < 0 || s.drained; };
    for (int pass = 0; pass < 2 && pick < 0; ++pass) {
      for (size_t i = 0; i < p.idle.size() && pick < 0; ++i) {
        if (unpositioned(*p.idle[i]) && (pass == 1 || p.idle[i]->light == light)) pick = static_cast<long>(i);
      }
    }
    // A new state while it would fit in the budget beside the parked ones (or,
    // under the built-in budget, when none is parked).
    bool keep_one = false;
    const int64_t budget = memory_budget(&keep_one);
    const int64_t fresh = state_bytes(light ? 1 : default_threads_);
    if (pick < 0 && p.live < kMaxDecoderStates &&
        (p.idle_bytes + fresh <= budget || (keep_one && p.idle.empty()))) {
      return open_state(lock, slice, light);
    }
    for (int pass = 0; pass < 2 && pick < 0; ++pass) {
      for (size_t i = 0; i < p.idle.size() && pick < 0; ++i) {
        if (pass == 1 || p.idle[i]->light == light) pick = static_cast<long>(i);
      }
    }
    if (pick >= 0) return p.take(static_cast<size_t>(pick));
    if (p.live < kMaxDecoderStates) {  // every state is busy: another thread's read
      return open_state(lock, slice, light);
    }
    p.cv.wait(lock);
  }
}

std::unique_ptr<VideoDecoder::State> VideoDecoder::open_state(std::unique_lock<std::mutex>& lock, bool slice,
                                                              bool light) {
  Pool& p = pool();
  ++p.live;
  lock.unlock();  // opening a codec may take a while; the pool stays usable meanwhile
  try {
    auto s = std::make_unique<State>(*index_, *source_, options_.threads, slice, light);
    s->bytes = state_bytes(s->codec->thread_count);
    return s;
  } catch (...) {
    std::lock_guard<std::mutex> relock(p.mutex);
    --p.live;
    throw;
  }
}

void VideoDecoder::trim(int keep) {
  Pool& p = pool();
  std::vector<std::unique_ptr<State>> dropped;  // closed after the lock is released
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    const size_t k = static_cast<size_t>(std::max(0, keep));
    bool keep_one = false;
    const int64_t budget = memory_budget(&keep_one);
    while (p.idle.size() > k || (!p.idle.empty() && p.idle_bytes > budget && !(keep_one && p.idle.size() == 1))) {
      dropped.push_back(p.take(0));
      --p.live;
    }
  }
  p.cv.notify_all();
  if (dropped.empty()) return;
  dropped.clear();
  report_parked();
#ifdef VIDLAKE_HAVE_MALLOC_TRIM
  // The closed states' pictures were large blocks in the middle of the heap
  // (and of codec threads' arenas); give the free pages back to the system now.
  malloc_trim(0);
#endif
}

void VideoDecoder::release(std::unique_ptr<State> state) {
  Pool& p = pool();
  std::vector<std::unique_ptr<State>> dropped;  // closed after the lock is released
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (state) {
      p.idle_bytes += state->bytes;
      p.idle.push_back(std::move(state));
      // Note [Parked decoders]: over the budget (or the cap), close the least recently used.
      bool keep_one = false;
      const int64_t budget = memory_budget(&keep_one);
      while (!p.idle.empty() && (p.idle_bytes > budget || static_cast<int>(p.idle.size()) > kMaxDecoderStates) &&
             !(keep_one && p.idle.size() == 1)) {
        dropped.push_back(p.take(0));
        --p.live;
      }
    } else {
      --p.live;
    }
  }
  p.cv.notify_one();
  dropped.clear();
  report_parked();
}

namespace {

void restart(VideoDecoder::State& s, int32_t start) {
  if (s.run_start >= 0) avcodec_flush_buffers(s.codec.get());
  s.run_start = start;
  s.next_packet = start;
  s.last_frame = -1;
  s.drained = false;
  s.skipped.clear();
  s.feeder.position(start);
}

// Takes every frame the decoder has ready; returns how many frames of the
// current span it completed (frames of later spans may come out early too).
int receive_frames(VideoDecoder::State& s, Request& req, VideoDecoder::Counters& c) {
  int completed = 0;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    int ret = avcodec_receive_frame(s.codec.get(), s.frame.get());
    if (ret == AVERROR(EAGAIN)) break;
    if (ret == AVERROR_EOF) {
      s.drained = true;
      break;
    }
    if (ret < 0) {  // a damaged frame: a sequential decode skips it too
      ++c.errors;
      continue;
    }
    ++c.frames;
    // Note [Skipped frames]: every emitted frame is either converted or counted
    // here: frames before the wanted one in its GOP, between strided frames, past
    // the last wanted one (lookahead, a drain at the end), or a second emission.
    bool converted = false;
    const int64_t token = s.frame->pts;
    if (token >= 0 && token < static_cast<int64_t>(req.index.packets.size())) {
      const int32_t f = req.index.packet_frame[static_cast<size_t>(token)];
      if (f >= 0) {
        s.last_frame = f;
        auto it = req.targets.find(f);
        if (it != req.targets.end() && !it->second.done) {
          Target& t = it->second;
          check_frame_size(req, s.frame.get(), f);
          const int64_t bytes = req.layout.frame_bytes();
          uint8_t* first = req.out + t.rows.front() * bytes;
          s.converter.convert(s.frame.get(), req.layout, first);
          ++c.converted;
          for (size_t k = 1; k < t.rows.size(); ++k) {
            std::memcpy(req.out + t.rows[k] * bytes, first, static_cast<size_t>(bytes));
          }
          t.done = true;
          converted = true;
          if (t.span == req.current_span) ++completed;
        }
      }
    }
    if (!converted) ++c.skipped;
    av_frame_unref(s.frame.get());
  }
  return completed;
}

void send_packet(VideoDecoder::State& s, Request& req, VideoDecoder::Counters& c, int& remaining) {
  for (;;) {
    int ret = avcodec_send_packet(s.codec.get(), s.packet.get());
    if (ret == AVERROR(EAGAIN)) {
      remaining -= receive_frames(s, req, c);
      continue;
    }
    if (ret < 0 && ret != AVERROR_EOF) ++c.errors;  // damaged packet: no frame, decoding goes on
    break;
  }
  av_packet_unref(s.packet.get());
  ++c.packets;
  remaining -= receive_frames(s, req, c);
}

}  // namespace

void VideoDecoder::get_frames(const std::vector<int32_t>& frames, const OutputLayout& layout, uint8_t* out,
                              bool resident_output) {
  if (frames.empty()) return;
  const PacketIndex& idx = *index_;
  Request req{idx, layout, out, {}, 0, source_->name()};
  for (size_t i = 0; i < frames.size(); ++i) req.targets[frames[i]].rows.push_back(static_cast<int64_t>(i));
  std::vector<int32_t> unique;
  unique.reserve(req.targets.size());
  for (const auto& kv : req.targets) unique.push_back(kv.first);
  std::sort(unique.begin(), unique.end());
  const std::vector<Span> spans = plan_spans(idx, unique);
  for (size_t i = 0; i < spans.size(); ++i) {
    for (int32_t f : spans[i].frames) req.targets[f].span = i;
  }
  counters_.spans += static_cast<int64_t>(spans.size());
  // Note [Prefaulting the output]: rows in the order the spans will write them.
  std::vector<int64_t> write_order;
  if (!resident_output && static_cast<int64_t>(frames.size()) * layout.frame_bytes() >= kPrefaultBytes) {
    write_order.reserve(frames.size());
    for (int32_t f : unique) {
      for (int64_t row : req.targets[f].rows) write_order.push_back(row);
    }
  }
  OutputPrefault prefault(out, layout.frame_bytes(), std::move(write_order), kPrefaultBytes);

  for (int attempt = 0;; ++attempt) {
    const bool slice = slice_only_.load();
    // Note [Skipping non-reference frames]: an unwanted non-reference frame can be
    // skipped without changing any other frame, provided the packet that carries
    // a frame is the one decoded with its skip setting. That fails for MPEG-4
    // packed B-frames (a B-VOP rides inside the previous P packet; AVI), and
    // error concealment in damaged streams may read skipped pictures; so skip
    // only with container timestamps, on undamaged streams, and not for MPEG-4.
    const bool skip_nonref = options_.skip_nonref && !slice && idx.pts_from_container &&
                             idx.info.codec_id != AV_CODEC_ID_MPEG4;
    const int64_t errors_before = counters_.errors.load();
    std::unique_ptr<State> state = acquire(spans.front(), light_reads_ && req.targets.size() == 1);
    try {
      State& s = *state;
      for (size_t span_no = 0; span_no < spans.size(); ++span_no) {
        const Span& span = spans[span_no];
        req.current_span = span_no;
        int remaining = 0;
        for (int32_t f : span.frames) remaining += req.targets[f].done ? 0 : 1;
        if (remaining == 0) continue;  // all emitted by the previous span's lookahead
        const bool forward = can_decode_on(s, span);
        if (forward) {
          ++counters_.forward;
        } else {
          ++counters_.seeks;
          restart(s, span.start);
        }
        // Note [Lookahead]: a frame-threaded decoder with reorder delay emits a
        // frame only after a few more packets went in. Local sources feed up to
        // that many packets past the span before draining, so the decoder stays
        // usable for the next read (sequential access never re-seeks); remote
        // sources drain instead of paying another round trip. Range sources
        // that say they are local (a dataset on disk or in memory) count as local.
        const int32_t feed_until = std::min<int32_t>(
            static_cast<int32_t>(idx.packets.size()) - 1,
            span.end + (remote_ ? 0 : s.codec->thread_count + idx.info.video_delay + 1));
        for (;;) {
          while (remaining > 0) {
            int32_t number = -1;
            if (s.next_packet <= feed_until) {
              if (!s.feeder.next(feed_until, s.packet.get(), &number)) break;
              if (skip_nonref) {
                const int32_t f = idx.packet_frame[static_cast<size_t>(number)];
                // Only frames on the way to the span's last wanted frame: those
                // after it are the likely next request (see Note [Lookahead]).
                const bool skip = f >= 0 && f < span.frames.back() && req.targets.count(f) == 0;
                s.codec->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
                if (skip) s.skipped.insert(f);
              }
              s.next_packet = number + 1;
              send_packet(s, req, counters_, remaining);
            } else if (!s.drained) {
              av_packet_unref(s.packet.get());
              avcodec_send_packet(s.codec.get(), nullptr);
              remaining -= receive_frames(s, req, counters_);
              s.drained = true;
            } else {
              break;
            }
          }
          if (remaining <= 0) break;
          // Some wanted frame never came out (an open-GOP leading picture the
          // decoder dropped, say): start again one keyframe earlier.
          const int32_t earlier = idx.keyframe_before(s.run_start);
          if (earlier < 0) {
            std::string missing;
            for (int32_t f : span.frames) {
              if (!req.targets[f].done) missing += (missing.empty() ? "" : ", ") + std::to_string(f);
            }
            throw DecodeError(source_->name() + ": frame " + missing +
                              " could not be decoded (the decoder emitted no picture for it)");
          }
          ++counters_.retries;
          restart(s, earlier);
        }
      }
    } catch (...) {
      state.reset();  // its codec state is unknown: drop it
      release(nullptr);
      throw;
    }
    if (!slice && attempt == 0 && counters_.errors.load() > errors_before) {
      // The stream is damaged: redo this read the way a sequential decode would.
      slice_only_ = true;
      ++counters_.retries;
      state.reset();
      release(nullptr);
      for (auto& kv : req.targets) kv.second.done = false;
      continue;
    }
    release(std::move(state));
    return;
  }
}

DecodeStats VideoDecoder::stats() {
  Pool& p = pool();
  DecodeStats st;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    st.decoders = p.live;
    st.parked_decoders = static_cast<int64_t>(p.idle.size());
    st.parked_bytes = p.idle_bytes;
  }
  st.packets_decoded = counters_.packets;
  st.frames_decoded = counters_.frames;
  st.frames_converted = counters_.converted;
  st.frames_skipped = counters_.skipped;
  st.spans = counters_.spans;
  st.seeks = counters_.seeks;
  st.forward_decodes = counters_.forward;
  st.retries = counters_.retries;
  st.decode_errors = counters_.errors;
  st.bytes_read = source_->bytes_read() - bytes_at_reset_;
  return st;
}

void VideoDecoder::reset_stats() {
  counters_.packets = 0;
  counters_.frames = 0;
  counters_.converted = 0;
  counters_.skipped = 0;
  counters_.spans = 0;
  counters_.seeks = 0;
  counters_.forward = 0;
  counters_.retries = 0;
  counters_.errors = 0;
  bytes_at_reset_ = source_->bytes_read();
}

}  // namespace vidlake
