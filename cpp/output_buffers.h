// Memory for the large output arrays vidlake allocates itself, recycled for a
// short time after Python frees them (see Note [Recycled output buffers]).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vidlake {

struct OutputBlock {
  uint8_t* data = nullptr;
  size_t bytes = 0;        // mapped length (a multiple of kGranule)
  bool resident = false;   // recycled: its pages are already in memory
};

struct OutputCacheInfo {
  int64_t max_bytes = 0;
  double keep_seconds = 0;
  int64_t cached_bytes = 0;  // freed blocks held for reuse now
  int64_t cached_blocks = 0;
  int64_t hits = 0;          // allocations served by a freed block
  int64_t misses = 0;        // allocations that mapped new memory
  int64_t returned = 0;      // blocks given back to the system
};

class OutputBuffers {
 public:
  static constexpr size_t kMinBytes = 16u << 20;  // smaller outputs use numpy's allocator
  static constexpr size_t kGranule = 2u << 20;

  static OutputBuffers& instance();  // one per process, never destroyed

  // A block of at least `bytes` (>= kMinBytes). Throws std::bad_alloc.
  OutputBlock acquire(size_t bytes);
  // Takes a block back: kept for reuse for keep_seconds, or unmapped at once
  // when caching is off or the block does not fit under max_bytes.
  void release(const OutputBlock& block) noexcept;
  // max_bytes < 0 or keep_seconds < 0: leave that setting as it is.
  void configure(int64_t max_bytes, double keep_seconds);
  void clear();  // unmap every cached block now
  OutputCacheInfo info();

 private:
  OutputBuffers();
  struct Cached {
    OutputBlock block;
    double released_at;
  };
  void reap();  // the background thread that unmaps blocks kept too long
  void evict_locked(size_t budget, std::vector<OutputBlock>& out);
  static void after_fork_in_child();

  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Cached> cached_;  // oldest first
  size_t cached_bytes_ = 0;
  int64_t max_bytes_;
  double keep_seconds_ = 10.0;
  bool reaper_running_ = false;
  int64_t hits_ = 0, misses_ = 0, returned_ = 0;
};

}  // namespace vidlake
