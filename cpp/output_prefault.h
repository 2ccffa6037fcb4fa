// Faults in the pages of a large output buffer on a helper thread, ahead of
// the decoder writing into them (see Note [Prefaulting the output]).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace vidlake {

class OutputPrefault {
 public:
  // Starts populating rows (each `row_bytes` long, at base + row * row_bytes)
  // in the given order, when they add up to at least `min_bytes`; otherwise
  // does nothing. Never writes to the buffer: its contents are unchanged.
  OutputPrefault(uint8_t* base, int64_t row_bytes, std::vector<int64_t> rows, int64_t min_bytes);
  ~OutputPrefault();  // stops and joins the helper
  OutputPrefault(const OutputPrefault&) = delete;
  OutputPrefault& operator=(const OutputPrefault&) = delete;

 private:
  void run();

  uint8_t* base_;
  int64_t row_bytes_;
  std::vector<int64_t> rows_;
  std::atomic<bool> stop_{false};
  std::thread helper_;
};

}  // namespace vidlake
