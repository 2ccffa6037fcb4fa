// Where a video's bytes come from: memory, a local file (pread) or a caller's
// range-fetching function (remote storage, dataset chunks). Every source counts
// the bytes it hands out.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vidlake {

struct ByteRange {
  int64_t start;  // inclusive
  int64_t end;    // exclusive
  int64_t length() const { return end - start; }
};

// Coalesces sorted-or-not ranges that touch or lie closer than `gap` bytes.
std::vector<ByteRange> merge_ranges(std::vector<ByteRange> ranges, int64_t gap);

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual int64_t size() const = 0;
  const std::string& name() const { return name_; }

  // Copies up to `len` bytes at `offset` into dst; returns the number copied (0 at EOF).
  // Thread-safe.
  virtual int64_t read_at(int64_t offset, uint8_t* dst, int64_t len) = 0;

  // Fetches several ranges at once (one round trip for remote sources). Each
  // returned buffer holds exactly its range's bytes (shorter only at EOF).
  virtual std::vector<std::string> read_ranges(const std::vector<ByteRange>& ranges);

  int64_t bytes_read() const { return bytes_read_.load(); }

 protected:
  explicit ByteSource(std::string name) : name_(std::move(name)) {}
  void count(int64_t n) { bytes_read_ += n; }

 private:
  std::string name_;
  std::atomic<int64_t> bytes_read_{0};
};

// Bytes the caller keeps alive through `owner` (e.g. a Python bytes object).
class MemorySource : public ByteSource {
 public:
  MemorySource(const uint8_t* data, int64_t size, std::shared_ptr<const void> owner, std::string name);
  int64_t size() const override { return size_; }
  int64_t read_at(int64_t offset, uint8_t* dst, int64_t len) override;
  const uint8_t* data() const { return data_; }

 private:
  const uint8_t* data_;
  int64_t size_;
  std::shared_ptr<const void> owner_;
};

// A local file read with pread (no shared file position, so thread-safe).
class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  int64_t size() const override { return size_; }
  int64_t read_at(int64_t offset, uint8_t* dst, int64_t len) override;

 private:
  int fd_ = -1;
  int64_t size_ = 0;
};

// Ranges fetched by a function (the binding wraps a Python callable in it).
class CallbackSource : public ByteSource {
 public:
  using FetchFn = std::function<std::vector<std::string>(const std::vector<ByteRange>&)>;
  // `local`: a fetch costs no network round trip (a dataset on local disk or in memory).
  CallbackSource(FetchFn fetch, int64_t size, std::string name, bool local = false);
  int64_t size() const override { return size_; }
  bool local() const { return local_; }
  int64_t read_at(int64_t offset, uint8_t* dst, int64_t len) override;
  std::vector<std::string> read_ranges(const std::vector<ByteRange>& ranges) override;

 private:
  FetchFn fetch_;
  int64_t size_;
  bool local_;
};

}  // namespace vidlake
