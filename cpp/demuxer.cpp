#include "demuxer.h"

#include <cstring>
#include <vector>

#include "errors.h"

namespace vidlake {

namespace {
constexpr int kIoBufferSize = 64 * 1024;
constexpr int64_t kRecentLimit = 16 * 1024 * 1024;
}  // namespace

// Note [Reused read blocks]: the recent-read cache copies every block the
// demuxer reads. Fresh strings for each index build meant fresh pages each time
// (glibc hands the freed heap back to the kernel at the end of a build, so the
// next one faults it in again: most of a small file's indexing time on the
// benchmark VM). Blocks are kept in a small per-thread pool and reused instead.
namespace {
constexpr size_t kSpareBlocks = 32;  // 2 MB of 64 KB blocks per thread
thread_local std::vector<std::string> spare_blocks;

std::string take_block() {
  if (spare_blocks.empty()) return std::string();
  std::string s = std::move(spare_blocks.back());
  spare_blocks.pop_back();
  return s;
}

void give_block(std::string&& s) {
  if (spare_blocks.size() < kSpareBlocks && s.capacity() <= static_cast<size_t>(kIoBufferSize) * 2) {
    spare_blocks.push_back(std::move(s));
  }
}
}  // namespace

int SourceDemuxer::read_callback(void* opaque, uint8_t* buf, int size) {
  auto* self = static_cast<SourceDemuxer*>(opaque);
  int64_t n = self->source_.read_at(self->position_, buf, size);
  if (n <= 0) return AVERROR_EOF;
  if (self->keep_recent_) {
    std::string block = take_block();
    block.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
    self->recent_.emplace_back(self->position_, std::move(block));
    self->recent_bytes_ += n;
    while (self->recent_bytes_ > kRecentLimit && self->recent_.size() > 1) {
      self->recent_bytes_ -= static_cast<int64_t>(self->recent_.front().second.size());
      give_block(std::move(self->recent_.front().second));
      self->recent_.pop_front();
    }
  }
  self->position_ += n;
  return static_cast<int>(n);
}

int64_t SourceDemuxer::seek_callback(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<SourceDemuxer*>(opaque);
  const int64_t size = self->source_.size();
  switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
      return size;
    case SEEK_SET:
      self->position_ = offset;
      break;
    case SEEK_CUR:
      self->position_ += offset;
      break;
    case SEEK_END:
      self->position_ = size + offset;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (self->position_ < 0) self->position_ = 0;
  return self->position_;
}

SourceDemuxer::~SourceDemuxer() {
  format_.reset();  // closes the demuxer before the blocks go back to the pool
  for (auto& block : recent_) give_block(std::move(block.second));
}

SourceDemuxer::SourceDemuxer(ByteSource& source, bool keep_recent, bool allow_probe)
    : source_(source), keep_recent_(keep_recent) {
  auto* buffer = static_cast<uint8_t*>(av_malloc(kIoBufferSize));
  if (buffer == nullptr) throw DecodeError(source.name() + ": out of memory");
  io_.reset(avio_alloc_context(buffer, kIoBufferSize, 0, this, &read_callback, nullptr, &seek_callback));
  if (!io_) {
    av_free(buffer);
    throw DecodeError(source.name() + ": out of memory");
  }
  AVFormatContext* ctx = avformat_alloc_context();
  if (ctx == nullptr) throw DecodeError(source.name() + ": out of memory");
  ctx->pb = io_.get();
  ctx->flags |= AVFMT_FLAG_CUSTOM_IO;
  int ret = avformat_open_input(&ctx, source.name().c_str(), known_format(source), nullptr);
  if (ret < 0) {  // avformat_open_input freed ctx
    throw_ffmpeg_error(ret, source.name(), "cannot open as a video");
  }
  format_.reset(ctx);
  probed_ = !header_is_complete(ctx);
  if (probed_ && !allow_probe) {
    probed_ = false;
    needs_probe_ = true;
    return;
  }
  if (probed_) {
    ret = avformat_find_stream_info(ctx, nullptr);
    if (ret < 0) throw_ffmpeg_error(ret, source.name(), "cannot read stream information");
  }
}

// Note [Skipping find_stream_info]: avformat_find_stream_info decodes several
// frames to guess what mov/mp4 and Matroska headers already state (codec,
// extradata, size, frame rates, reorder delay); on small files that decode is
// 90% of indexing time. It is skipped for those containers when the file has
// exactly one video stream (so av_find_best_stream's choice cannot depend on
// probe counts) and the header gave its codec, size and (H.264/HEVC) extradata.
// The pixel format, which only the bitstream knows (full range turns yuv420p into
// yuvj420p), is taken from the first decoded frame by the index builder: one
// frame instead of the probe's seven or more. Every test asset decodes
// bit-identically either way.
bool SourceDemuxer::header_is_complete(const AVFormatContext* ctx) {
  const std::string name = ctx->iformat->name;
  if (name != "mov,mp4,m4a,3gp,3g2,mj2" && name != "matroska,webm") return false;
  int video = 0;
  for (unsigned i = 0; i < ctx->nb_streams; ++i) {
    const AVStream* st = ctx->streams[i];
    const AVCodecParameters* par = st->codecpar;
    if (par->codec_type != AVMEDIA_TYPE_VIDEO) continue;
    if (st->disposition & AV_DISPOSITION_ATTACHED_PIC) return false;
    ++video;
    if (par->codec_id == AV_CODEC_ID_NONE || par->width <= 0 || par->height <= 0) return false;
    if ((par->codec_id == AV_CODEC_ID_H264 || par->codec_id == AV_CODEC_ID_HEVC) && par->extradata_size == 0) {
      return false;
    }
    if (st->avg_frame_rate.num <= 0 && st->r_frame_rate.num <= 0) return false;
  }
  return video == 1;
}

// Note [Known formats]: probing runs every demuxer's probe over the first
// kilobytes, ~15% of indexing a small file. Files whose first bytes name their
// container unambiguously go straight to its demuxer: an ISO-BMFF box ('ftyp',
// 'moov', 'mdat', 'free', 'wide', 'skip') at offset 4 is mov/mp4, the EBML magic
// is Matroska/WebM. Everything else is probed as usual.
const AVInputFormat* SourceDemuxer::known_format(ByteSource& source) {
  uint8_t head[12] = {0};
  if (source.read_at(0, head, sizeof(head)) < static_cast<int64_t>(sizeof(head))) return nullptr;
  static const char* const kBoxes[] = {"ftyp", "moov", "mdat", "free", "wide", "skip"};
  for (const char* box : kBoxes) {
    if (std::memcmp(head + 4, box, 4) == 0) return av_find_input_format("mov");
  }
  if (head[0] == 0x1a && head[1] == 0x45 && head[2] == 0xdf && head[3] == 0xa3) {
    return av_find_input_format("matroska");
  }
  return nullptr;
}

int SourceDemuxer::read(AVPacket* packet) { return av_read_frame(format_.get(), packet); }

bool SourceDemuxer::seek_to_byte(int64_t pos, int stream_index) {
  if (format_->iformat->flags & AVFMT_NO_BYTE_SEEK) return false;
  return av_seek_frame(format_.get(), stream_index, pos, AVSEEK_FLAG_BYTE) >= 0;
}

bool SourceDemuxer::recent_match(int64_t offset, const uint8_t* data, int64_t size) const {
  // The payload may span several recent blocks; compare piece by piece.
  int64_t done = 0;
  while (done < size) {
    const int64_t at = offset + done;
    bool found = false;
    for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
      const int64_t start = it->first;
      const int64_t end = start + static_cast<int64_t>(it->second.size());
      if (at >= start && at < end) {
        const int64_t n = std::min(end - at, size - done);
        if (std::memcmp(it->second.data() + (at - start), data + done, static_cast<size_t>(n)) != 0) return false;
        done += n;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

int64_t SourceDemuxer::locate(int64_t hint, const uint8_t* data, int64_t size, int64_t window) {
  if (hint < 0 || size <= 0) return -1;
  if (const auto* mem = dynamic_cast<const MemorySource*>(&source_)) {
    for (int64_t off = hint; off <= hint + window && off + size <= mem->size(); ++off) {
      if (mem->data()[off] == data[0] && std::memcmp(mem->data() + off, data, static_cast<size_t>(size)) == 0) {
        return off;
      }
    }
    return -1;
  }
  for (int64_t off = hint; off <= hint + window; ++off) {
    if (recent_match(off, data, std::min<int64_t>(size, 16)) && recent_match(off, data, size)) return off;
  }
  // Not in the recent reads: read the window back from the source.
  std::string buf(static_cast<size_t>(size + window), '\0');
  int64_t got = source_.read_at(hint, reinterpret_cast<uint8_t*>(&buf[0]), size + window);
  for (int64_t off = 0; off + size <= got; ++off) {
    if (std::memcmp(buf.data() + off, data, static_cast<size_t>(size)) == 0) return hint + off;
  }
  return -1;
}

}  // namespace vidlake
