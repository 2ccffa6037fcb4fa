// FFmpeg's log lines, kept for Python's logging instead of printed to stderr.
//
// Note [FFmpeg log lines]: av_log may be called from any thread (frame-threaded decoders log from
// their workers), so the callback only formats the line and appends it to a bounded buffer under
// a mutex; it never calls into Python. The Python layer drains the buffer after each call into the
// core (vidlake/video/ffmpeg_log.py) and hands the lines to the `vidlake.ffmpeg` logger.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vidlake {

// Installs the buffering callback (idempotent) with FFmpeg's log level set to `level`.
void install_log_buffer(int level);
// The lines logged since the last call, oldest first, and how many were dropped because the
// buffer was full (at most kMaxLogLines are kept).
std::pair<std::vector<std::pair<int, std::string>>, int64_t> drain_log();
constexpr size_t kMaxLogLines = 1000;

// While one lives, FFmpeg lines logged from this thread are dropped: the tables path
// (Note [Index from the container's tables]) runs the stream's parser over zeros, and its
// complaints about them say nothing about the file.
class ScopedLogMute {
 public:
  ScopedLogMute();
  ~ScopedLogMute();
  ScopedLogMute(const ScopedLogMute&) = delete;
  ScopedLogMute& operator=(const ScopedLogMute&) = delete;
};

}  // namespace vidlake
