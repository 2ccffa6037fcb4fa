// Which process generation this is: 0 in the process that loaded vidlake, +1 in
// each child forked after that (see Note [Objects inherited through fork]).
#pragma once

#include <cstdint>

namespace vidlake {

// Note [Objects inherited through fork]: fork copies a process's memory but only
// the calling thread. A codec context with frame or slice threads copied into a
// child refers to worker threads that do not exist there: closing it waits in
// pthread_cond_destroy / pthread_join for them forever (the DataLoader worker
// hang of issue 14: a worker garbage-collected a reader inherited from the
// parent), and decoding with it waits for them too. Likewise a mutex another
// thread held at the fork stays locked in the child. So an object that owns such
// state records the generation it was made in and, seen from a later generation,
// sets that state aside (leaked: its pages stay shared copy-on-write with the
// parent, never written) and starts afresh. Process-wide mutexes of the core are
// taken around fork instead (pthread_atfork: ffmpeg_log.cpp, output_buffers.cpp).
uint64_t fork_generation();

}  // namespace vidlake
