#include "byte_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "errors.h"

namespace vidlake {

std::vector<ByteRange> merge_ranges(std::vector<ByteRange> ranges, int64_t gap) {
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });
  std::vector<ByteRange> merged;
  for (const ByteRange& r : ranges) {
    if (r.end <= r.start) continue;
    if (!merged.empty() && r.start <= merged.back().end + gap) {
      merged.back().end = std::max(merged.back().end, r.end);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

std::vector<std::string> ByteSource::read_ranges(const std::vector<ByteRange>& ranges) {
  std::vector<std::string> out;
  out.reserve(ranges.size());
  for (const ByteRange& r : ranges) {
    std::string buf(static_cast<size_t>(std::max<int64_t>(0, r.length())), '\0');
    int64_t got = 0;
    while (got < r.length()) {
      int64_t n = read_at(r.start + got, reinterpret_cast<uint8_t*>(&buf[got]), r.length() - got);
      if (n <= 0) break;
      got += n;
    }
    buf.resize(static_cast<size_t>(got));
    out.push_back(std::move(buf));
  }
  return out;
}

MemorySource::MemorySource(const uint8_t* data, int64_t size, std::shared_ptr<const void> owner,
                           std::string name)
    : ByteSource(std::move(name)), data_(data), size_(size), owner_(std::move(owner)) {}

int64_t MemorySource::read_at(int64_t offset, uint8_t* dst, int64_t len) {
  if (offset < 0 || offset >= size_ || len <= 0) return 0;
  int64_t n = std::min(len, size_ - offset);
  std::memcpy(dst, data_ + offset, static_cast<size_t>(n));
  count(n);
  return n;
}

FileSource::FileSource(const std::string& path) : ByteSource(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw DecodeError(path + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw DecodeError(path + ": not a regular file");
  }
  size_ = st.st_size;
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t FileSource::read_at(int64_t offset, uint8_t* dst, int64_t len) {
  if (offset < 0 || offset >= size_ || len <= 0) return 0;
  int64_t total = 0;
  while (total < len) {
    ssize_t n = ::pread(fd_, dst + total, static_cast<size_t>(len - total), offset + total);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw DecodeError(name() + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) break;
    total += n;
  }
  count(total);
  return total;
}

CallbackSource::CallbackSource(FetchFn fetch, int64_t size, std::string name, bool local)
    : ByteSource(std::move(name)), fetch_(std::move(fetch)), size_(size), local_(local) {}

int64_t CallbackSource::read_at(int64_t offset, uint8_t* dst, int64_t len) {
  if (offset < 0 || offset >= size_ || len <= 0) return 0;
  int64_t n = std::min(len, size_ - offset);
  std::vector<std::string> got = read_ranges({ByteRange{offset, offset + n}});
  int64_t copied = std::min<int64_t>(n, static_cast<int64_t>(got.at(0).size()));
  std::memcpy(dst, got[0].data(), static_cast<size_t>(copied));
  return copied;
}

std::vector<std::string> CallbackSource::read_ranges(const std::vector<ByteRange>& ranges) {
  std::vector<ByteRange> clipped;
  clipped.reserve(ranges.size());
  for (const ByteRange& r : ranges) {
    clipped.push_back(ByteRange{std::max<int64_t>(0, r.start), std::min(size_, r.end)});
  }
  std::vector<std::string> out = fetch_(clipped);
  if (out.size() != clipped.size()) {
    throw DecodeError(name() + ": range fetch returned " + std::to_string(out.size()) +
                      " buffers for " + std::to_string(clipped.size()) + " ranges");
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (static_cast<int64_t>(out[i].size()) < clipped[i].length()) {
      throw DecodeError(name() + ": range fetch returned " + std::to_string(out[i].size()) +
                        " bytes for range [" + std::to_string(clipped[i].start) + ", " +
                        std::to_string(clipped[i].end) + ")");
    }
    count(static_cast<int64_t>(out[i].size()));
  }
  return out;
}

}  // namespace vidlake
