// A small pool of threads that decodes clips ahead of the caller (Note [Clip
// prefetch pool]): the loader submits the next batch's clips while it hands out
// the current one, then waits for each ticket. At most `capacity` clips are
// queued or decoding at once (submit blocks beyond that), so memory stays flat.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace vidlake {

struct PrefetchStats {
  int threads = 0;
  int capacity = 0;
  int64_t submitted = 0;
  int64_t completed = 0;
  int64_t pending = 0;       // queued or decoding now
  int64_t peak_pending = 0;  // the most ever queued or decoding at once (<= capacity)
  int64_t uncollected = 0;   // finished, not yet waited for
};

class ClipPrefetcher {
 public:
  using Job = std::function<void()>;
  ClipPrefetcher(int threads, int capacity);
  // Cancels jobs not started, waits for running ones. In a forked child the
  // parent's pool is set aside instead (Note [Objects inherited through fork]).
  ~ClipPrefetcher();
  ClipPrefetcher(const ClipPrefetcher&) = delete;
  ClipPrefetcher& operator=(const ClipPrefetcher&) = delete;

  // Queues `job`; blocks while `capacity` jobs are queued or running. Returns its ticket.
  uint64_t submit(Job job);
  // Blocks until the ticket's job has run; rethrows what it threw. Each ticket once.
  void wait(uint64_t ticket);
  PrefetchStats stats();

  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace vidlake
