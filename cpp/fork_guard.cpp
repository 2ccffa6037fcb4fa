#include "fork_guard.h"

#include <atomic>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace vidlake {
namespace {

std::atomic<uint64_t> generation{0};

#if defined(__unix__) || defined(__APPLE__)
// Registered when the library is loaded, before any fork it must see.
const bool registered = [] {
  pthread_atfork(nullptr, nullptr, [] { generation.fetch_add(1, std::memory_order_relaxed); });
  return true;
}();
#endif

}  // namespace

uint64_t fork_generation() {
#if defined(__unix__) || defined(__APPLE__)
  (void)registered;
#endif
  return generation.load(std::memory_order_relaxed);
}

}  // namespace vidlake
