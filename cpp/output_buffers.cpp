#include "output_buffers.h"

#include <algorithm>
#include <chrono>
#include <new>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#define VIDLAKE_HAVE_MMAP 1
#else
#include <cstdlib>
#endif

namespace vidlake {

// Note [Recycled output buffers]: every large array vidlake allocates for a
// read is new memory, and the kernel hands out and zeroes each page on first
// write. On the 2-core benchmark VM that made a 1.9 GB full decode take
// 1.2-1.5 s against 0.95-1.0 s into memory already in place (see also Note
// [Prefaulting the output]), and loops that read clip after clip of one shape
// pay it on every read. So outputs of 16 MB or more get their own mapping, and
// when Python frees the array the mapping is kept, pages in place, for
// keep_seconds (10 s by default, jemalloc's decay time) and handed to the next
// read that needs at most as much and at least four fifths of it. At most
// max_bytes (an eighth of RAM, capped at 4 GB) is kept; a background thread
// unmaps blocks not reused in time, so memory freed by Python still goes back
// to the system, only later. A recycled block holds the frames of an earlier
// read until this read overwrites them: the decoder writes every row of the
// array before it returns, or raises and the array is never seen.
// `vidlake.set_output_cache(max_bytes=0)` turns it off.

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t default_max_bytes() {
  int64_t ram = 0;
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) ram = static_cast<int64_t>(pages) * page;
#endif
  if (ram <= 0) return 0;
  return std::min<int64_t>(ram / 8, int64_t{4} << 30);
}

uint8_t* map_block(size_t bytes) {
#ifdef VIDLAKE_HAVE_MMAP
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#if defined(MADV_NOHUGEPAGE)
  // Small pages. Transparent huge pages come from large free blocks, which a
  // VM with free page reporting (Firecracker here: page_reporting_order=11)
  // has handed back to the host, so their first touch waits for the host to
  // fault memory back in (not compaction: compact_stall stayed 0). Measured for
  // a 1.9 GB output: huge pages 4.3-4.7 s for the first read in a process,
  // 1.0-1.3 s after; small pages a steady 1.3-1.6 s.
  madvise(p, bytes, MADV_NOHUGEPAGE);
#endif
  return static_cast<uint8_t*>(p);
#else
  void* p = std::malloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
#endif
}

void unmap_block(const OutputBlock& b) noexcept {
#ifdef VIDLAKE_HAVE_MMAP
  munmap(b.data, b.bytes);
#else
  std::free(b.data);
#endif
}

}  // namespace

OutputBuffers& OutputBuffers::instance() {
  // Leaked on purpose: arrays freed while the interpreter shuts down still
  // return their blocks here, after static destructors would have run.
  static OutputBuffers* buffers = [] {
    auto* b = new OutputBuffers();
#ifdef VIDLAKE_HAVE_MMAP
    // A forked child (a DataLoader worker) has no reaper thread and must not
    // inherit a locked mutex: the parent's lock is held across fork, and the
    // child starts with an empty cache.
    pthread_atfork([] { instance().mu_.lock(); }, [] { instance().mu_.unlock(); }, &OutputBuffers::after_fork_in_child);
#endif
    return b;
  }();
  return *buffers;
}

OutputBuffers::OutputBuffers() : max_bytes_(default_max_bytes()) {}

void OutputBuffers::after_fork_in_child() {
  OutputBuffers& self = instance();
  for (const Cached& c : self.cached_) unmap_block(c.block);
  self.cached_.clear();
  self.cached_bytes_ = 0;
  self.reaper_running_ = false;
  // The parent's reaper may have been waiting on wake_: a condition variable
  // whose waiters do not exist here is made anew (never destroyed: the
  // instance is leaked on purpose). Note [Objects inherited through fork].
  new (&self.wake_) std::condition_variable();
  self.mu_.unlock();
}

OutputBlock OutputBuffers::acquire(size_t bytes) {
  const size_t want = (std::max(bytes, size_t{1}) + kGranule - 1) / kGranule * kGranule;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // The smallest block that fits and wastes at most a fifth; among equal
    // sizes the most recently freed, whose pages are likeliest still cached.
    int best = -1;
    for (int i = static_cast<int>(cached_.size()) - 1; i >= 0; --i) {
      const size_t have = cached_[i].block.bytes;
      if (have < want || have - want > have / 5) continue;
      if (best < 0 || have < cached_[best].block.bytes) best = i;
    }
    if (best >= 0) {
      OutputBlock b = cached_[best].block;
      cached_.erase(cached_.begin() + best);
      cached_bytes_ -= b.bytes;
      ++hits_;
      b.resident = true;
      return b;
    }
    ++misses_;
  }
  OutputBlock b;
  b.data = map_block(want);
  b.bytes = want;
  b.resident = false;
  return b;
}

void OutputBuffers::evict_locked(size_t budget, std::vector<OutputBlock>& out) {
  while (!cached_.empty() && cached_bytes_ > budget) {
    out.push_back(cached_.front().block);
    cached_bytes_ -= cached_.front().block.bytes;
    cached_.erase(cached_.begin());
    ++returned_;
  }
}

void OutputBuffers::release(const OutputBlock& block) noexcept {
  if (block.data == nullptr) return;
  std::vector<OutputBlock> drop;
  bool start_reaper = false;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    if (max_bytes_ <= 0 || keep_seconds_ <= 0 || block.bytes > static_cast<size_t>(max_bytes_)) {
      drop.push_back(block);
      ++returned_;
    } else {
      cached_.push_back(Cached{block, now_seconds()});
      cached_bytes_ += block.bytes;
      evict_locked(static_cast<size_t>(max_bytes_), drop);
      if (!reaper_running_) {
        reaper_running_ = true;
        start_reaper = true;
      }
      wake_.notify_one();
    }
  } catch (...) {
    drop.push_back(block);  // could not cache it: give it back
  }
  for (const OutputBlock& b : drop) unmap_block(b);
  if (start_reaper) {
    try {
      std::thread([this] { reap(); }).detach();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      reaper_running_ = false;
      std::vector<OutputBlock> all;
      evict_locked(0, all);
      for (const OutputBlock& b : all) unmap_block(b);
    }
  }
}

void OutputBuffers::reap() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (cached_.empty()) {
      reaper_running_ = false;  // the next release starts a new one
      return;
    }
    const double due = cached_.front().released_at + keep_seconds_;
    const double now = now_seconds();
    if (now < due) {
      wake_.wait_for(lock, std::chrono::duration<double>(due - now));
      continue;
    }
    std::vector<OutputBlock> drop;
    while (!cached_.empty() && cached_.front().released_at + keep_seconds_ <= now) {
      drop.push_back(cached_.front().block);
      cached_bytes_ -= cached_.front().block.bytes;
      cached_.erase(cached_.begin());
      ++returned_;
    }
    lock.unlock();
    for (const OutputBlock& b : drop) unmap_block(b);
    lock.lock();
  }
}

void OutputBuffers::configure(int64_t max_bytes, double keep_seconds) {
  std::vector<OutputBlock> drop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (max_bytes >= 0) max_bytes_ = max_bytes;
    if (keep_seconds >= 0) keep_seconds_ = keep_seconds;
    const bool off = max_bytes_ <= 0 || keep_seconds_ <= 0;
    evict_locked(off ? 0 : static_cast<size_t>(max_bytes_), drop);
    wake_.notify_one();
  }
  for (const OutputBlock& b : drop) unmap_block(b);
}

void OutputBuffers::clear() {
  std::vector<OutputBlock> drop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    evict_locked(0, drop);
  }
  for (const OutputBlock& b : drop) unmap_block(b);
}

OutputCacheInfo OutputBuffers::info() {
  std::lock_guard<std::mutex> lock(mu_);
  OutputCacheInfo i;
  i.max_bytes = max_bytes_;
  i.keep_seconds = keep_seconds_;
  i.cached_bytes = static_cast<int64_t>(cached_bytes_);
  i.cached_blocks = static_cast<int64_t>(cached_.size());
  i.hits = hits_;
  i.misses = misses_;
  i.returned = returned_;
  return i;
}

}  // namespace vidlake
