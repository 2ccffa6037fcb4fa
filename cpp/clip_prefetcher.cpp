#include "clip_prefetcher.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "fork_guard.h"

namespace vidlake {

// Note [Clip prefetch pool]: with num_workers=0 a training loop and the loader
// share one process. The loader plans batch k+1 (Python: samplers, reader
// cache, aligned tensors) and submits each of its clips here; these threads
// decode them straight into the batch tensor, without the GIL, while the
// caller trains on batch k. Planning stays in Python; only decoding moves. The
// bound counts clips queued or decoding; finished clips wait, holding no more
// than the output the caller already allocated, until their ticket is waited
// for (the loader keeps `prefetch` batches ahead, so memory is flat).
struct ClipPrefetcher::Impl {
  explicit Impl(int cap) : capacity(cap), generation(fork_generation()) {}
  struct Result {
    bool done = false;
    std::exception_ptr error;
  };
  const int capacity;
  const uint64_t generation;
  std::mutex mu;
  std::condition_variable work;   // a job was queued, or stop
  std::condition_variable room;   // a job finished: room in the queue, a result
  std::deque<std::pair<uint64_t, Job>> queue;
  std::unordered_map<uint64_t, Result> results;
  std::vector<std::thread> threads;
  uint64_t next_ticket = 1;
  int64_t submitted = 0, completed = 0, pending = 0, peak = 0;
  bool stop = false;

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stop, nothing left to run
      auto [ticket, job] = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      std::exception_ptr error;
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
      job = nullptr;
      lock.lock();
      Result& r = results[ticket];
      r.done = true;
      r.error = error;
      --pending;
      ++completed;
      room.notify_all();
    }
  }

  void check_process() const {
    if (generation != fork_generation()) {
      throw ArgumentError("this clip prefetcher belongs to the parent process (its threads are not in a "
                          "forked child): make a new one in the child");
    }
  }
};

ClipPrefetcher::ClipPrefetcher(int threads, int capacity) {
  if (threads < 1 || threads > 64) throw ArgumentError("prefetch threads must be between 1 and 64");
  if (capacity < 1) throw ArgumentError("prefetch capacity must be at least 1");
  auto impl = std::make_unique<Impl>(capacity);
  for (int i = 0; i < threads; ++i) impl->threads.emplace_back([p = impl.get()] { p->run(); });
  impl_ = impl.release();
}

ClipPrefetcher::~ClipPrefetcher() {
  if (impl_->generation != fork_generation()) return;  // a parent's pool: set aside, never joined
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
    impl_->pending -= static_cast<int64_t>(impl_->queue.size());
    impl_->queue.clear();  // not started: cancelled
  }
  impl_->work.notify_all();
  for (std::thread& t : impl_->threads) t.join();
  delete impl_;
}

uint64_t ClipPrefetcher::submit(Job job) {
  impl_->check_process();
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->room.wait(lock, [&] { return impl_->pending < impl_->capacity; });
  const uint64_t ticket = impl_->next_ticket++;
  impl_->results.emplace(ticket, Impl::Result{});
  impl_->queue.emplace_back(ticket, std::move(job));
  ++impl_->submitted;
  ++impl_->pending;
  if (impl_->pending > impl_->peak) impl_->peak = impl_->pending;
  impl_->work.notify_one();
  return ticket;
}

void ClipPrefetcher::wait(uint64_t ticket) {
  impl_->check_process();
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto it = impl_->results.find(ticket);
  if (it == impl_->results.end()) throw ArgumentError("unknown prefetch ticket " + std::to_string(ticket));
  impl_->room.wait(lock, [&] { return impl_->results.at(ticket).done; });
  it = impl_->results.find(ticket);
  std::exception_ptr error = it->second.error;
  impl_->results.erase(it);
  lock.unlock();
  if (error) std::rethrow_exception(error);
}

PrefetchStats ClipPrefetcher::stats() {
  impl_->check_process();
  std::lock_guard<std::mutex> lock(impl_->mu);
  PrefetchStats s;
  s.threads = static_cast<int>(impl_->threads.size());
  s.capacity = impl_->capacity;
  s.submitted = impl_->submitted;
  s.completed = impl_->completed;
  s.pending = impl_->pending;
  s.peak_pending = impl_->peak;
  int64_t uncollected = 0;
  for (const auto& kv : impl_->results) uncollected += kv.second.done ? 1 : 0;
  s.uncollected = uncollected;
  return s;
}

}  // namespace vidlake
