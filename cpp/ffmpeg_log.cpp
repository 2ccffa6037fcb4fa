#include "ffmpeg_log.h"

#include <cstdarg>
#include <deque>
#include <mutex>

extern "C" {
#include <libavutil/log.h>
}

namespace vidlake {
namespace {

std::mutex log_mutex;
std::deque<std::pair<int, std::string>> log_lines;
int64_t log_dropped = 0;
std::string log_partial;  // a line FFmpeg writes in several calls (no trailing newline yet)

thread_local int muted = 0;

void buffer_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > av_log_get_level() || muted > 0) return;
  char line[1024];
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, vl);
  av_log_format_line2(avcl, level, fmt, copy, line, sizeof(line), &print_prefix);
  va_end(copy);
  std::lock_guard<std::mutex> lock(log_mutex);
  log_partial += line;
  if (log_partial.empty() || log_partial.back() != '\n') return;
  log_partial.pop_back();
  if (log_lines.size() >= kMaxLogLines) {
    log_lines.pop_front();
    ++log_dropped;
  }
  log_lines.emplace_back(level, std::move(log_partial));
  log_partial.clear();
}

}  // namespace

void install_log_buffer(int level) {
  av_log_set_level(level);
  av_log_set_callback(buffer_callback);
}

std::pair<std::vector<std::pair<int, std::string>>, int64_t> drain_log() {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::vector<std::pair<int, std::string>> out(log_lines.begin(), log_lines.end());
  log_lines.clear();
  int64_t dropped = log_dropped;
  log_dropped = 0;
  return {std::move(out), dropped};
}

ScopedLogMute::ScopedLogMute() { ++muted; }
ScopedLogMute::~ScopedLogMute() { --muted; }

}  // namespace vidlake
