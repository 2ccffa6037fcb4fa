#include "mp4_layout.h"

#include <algorithm>
#include <cstring>

#include "errors.h"

namespace vidlake {

namespace {

constexpr int64_t kSpeculativeRead = 4096;  // one read: a box header, and a small box whole
// Boxes read whole: the tables (moov, moof) up to 1 GB, any other box up to 64 MB. Larger
// padding (free, skip, wide) reads as zeros like mdat; any other larger box sends the file
// to the full demux instead of a huge allocation and transfer.
constexpr int64_t kMaxTableBox = int64_t{1} << 30;
constexpr int64_t kMaxOtherBox = int64_t{64} << 20;

bool type_is(const uint8_t* t, const char* name) { return std::memcmp(t, name, 4) == 0; }

bool is_padding(const uint8_t* t) { return type_is(t, "free") || type_is(t, "skip") || type_is(t, "wide"); }

uint32_t be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

bool printable_type(const uint8_t* t) {
  for (int i = 0; i < 4; ++i) {
    if (t[i] < 0x20 || t[i] > 0x7e) return false;
  }
  return true;
}

bool is_first_box(const uint8_t* t) {
  static const char* const kFirst[] = {"ftyp", "moov", "mdat", "free", "wide", "skip", "styp", "pnot"};
  for (const char* b : kFirst) {
    if (std::memcmp(t, b, 4) == 0) return true;
  }
  return false;
}

// A box header at `p` (`avail` bytes readable, `left` bytes to the end of the enclosing box):
// its total size and header size, or false when it does not fit.
bool box_header(const uint8_t* p, int64_t avail, int64_t left, int64_t& box, int64_t& header) {
  if (avail < 8) return false;
  box = be32(p);
  header = 8;
  if (box == 1) {
    if (avail < 16) return false;
    box = (static_cast<int64_t>(be32(p + 8)) << 32) | be32(p + 12);
    header = 16;
  } else if (box == 0) {
    box = left;
  }
  return box >= header && box <= left;
}

// trun flags with a 4-byte field per sample: duration, size, flags, composition offset.
constexpr uint32_t kTrunPerSampleFields[] = {0x100, 0x200, 0x400, 0x800};

void check_trun(const uint8_t* body, int64_t len, int64_t trun_pos, int64_t after_moof, const std::string& name) {
  if (len < 8) return;  // libavformat reads past it into the next box; nothing is sized from it
  const uint32_t flags = be32(body) & 0xffffff;
  const int64_t count = be32(body + 4);
  const int64_t fixed = 8 + ((flags & 0x1) ? 4 : 0) + ((flags & 0x4) ? 4 : 0);  // data offset, first flags
  int64_t per_sample = 0;
  for (uint32_t f : kTrunPerSampleFields) per_sample += (flags & f) ? 4 : 0;
  const int64_t most = per_sample > 0 ? std::max<int64_t>(len - fixed, 0) / per_sample : after_moof;
  if (count > most) {
    throw DecodeError(name + ": damaged MP4: the trun box at offset " + std::to_string(trun_pos) + " lists " +
                      std::to_string(count) + " samples, more than " +
                      (per_sample > 0 ? "its " + std::to_string(len) + " bytes hold (" + std::to_string(most) + ")"
                                      : "the " + std::to_string(after_moof) +
                                            " bytes after its moof could carry"));
  }
}

// Calls f(type, body, body_len, body_offset_in_parent) for each child box of [p, p + len).
template <class F>
void for_each_box(const uint8_t* p, int64_t len, F&& f) {
  int64_t at = 0;
  while (at < len) {
    int64_t box = 0, header = 0;
    if (!box_header(p + at, len - at, len - at, box, header)) return;
    f(p + at + 4, p + at + header, box - header, at + header);
    at += box;
  }
}

}  // namespace

void check_moof_sample_counts(const uint8_t* moof, int64_t len, int64_t pos, int64_t file_size,
                              const std::string& name) {
  int64_t box = 0, header = 0;
  if (!box_header(moof, len, len, box, header)) return;
  const int64_t after_moof = std::max<int64_t>(file_size - (pos + box), 0);
  for_each_box(moof + header, box - header, [&](const uint8_t* type, const uint8_t* traf, int64_t traf_len,
                                                int64_t traf_at) {
    if (!type_is(type, "traf")) return;
    for_each_box(traf, traf_len, [&](const uint8_t* t, const uint8_t* body, int64_t body_len, int64_t body_at) {
      if (type_is(t, "trun")) check_trun(body, body_len, pos + header + traf_at + body_at, after_moof, name);
    });
  });
}

void check_mp4_fragments(ByteSource& source) {
  const int64_t size = source.size();
  uint8_t h[16];
  int64_t pos = 0;
  for (int boxes = 0; pos < size; ++boxes) {
    const int64_t got = source.read_at(pos, h, std::min<int64_t>(16, size - pos));
    int64_t box = 0, header = 0;
    if (got < 8 || !printable_type(h + 4) || (boxes == 0 && !is_first_box(h + 4)) ||
        !box_header(h, got, size - pos, box, header)) {
      return;  // not ISO-BMFF, or not a layout this walk follows: the demuxer's answer stands
    }
    if (type_is(h + 4, "moof") && box <= kMaxOtherBox) {
      std::string moof(static_cast<size_t>(box), '\0');
      if (source.read_at(pos, reinterpret_cast<uint8_t*>(&moof[0]), box) != box) return;
      check_moof_sample_counts(reinterpret_cast<const uint8_t*>(moof.data()), box, pos, size, source.name());
    }
    pos += box;
  }
}

std::optional<TablesLayout> scan_mp4_layout(ByteSource& source) {
  const int64_t size = source.size();
  TablesLayout layout;
  std::string buf;       // the last speculative read
  int64_t buf_start = 0;
  auto fetch = [&](int64_t at, int64_t len) {
    buf.assign(static_cast<size_t>(len), '\0');
    int64_t got = source.read_at(at, reinterpret_cast<uint8_t*>(&buf[0]), len);
    buf.resize(static_cast<size_t>(std::max<int64_t>(got, 0)));
    buf_start = at;
    layout.header_bytes += static_cast<int64_t>(buf.size());
  };
  auto have = [&](int64_t at, int64_t len) {
    return at >= buf_start && at + len <= buf_start + static_cast<int64_t>(buf.size());
  };
  bool moov = false;
  int64_t pos = 0;
  while (pos < size) {
    if (!have(pos, 16)) fetch(pos, std::min(kSpeculativeRead, size - pos));
    if (!have(pos, 8)) return std::nullopt;  // a truncated box header
    const uint8_t* h = reinterpret_cast<const uint8_t*>(buf.data() + (pos - buf_start));
    if (!printable_type(h + 4) || (layout.boxes == 0 && !is_first_box(h + 4))) return std::nullopt;
    int64_t box = 0, header = 0;
    const int64_t avail = buf_start + static_cast<int64_t>(buf.size()) - pos;
    if (!box_header(h, avail, size - pos, box, header)) return std::nullopt;  // boxes must tile the file
    ++layout.boxes;
    if (type_is(h + 4, "moov")) moov = true;
    if (type_is(h + 4, "moof")) layout.fragmented = true;
    if (type_is(h + 4, "mdat") || (is_padding(h + 4) && box > kSpeculativeRead)) {
      if (box > header) layout.payload.push_back(ByteRange{pos + header, pos + box});
    } else {
      const bool moof = type_is(h + 4, "moof");
      const bool tables = moof || type_is(h + 4, "moov");
      if (box > (tables ? kMaxTableBox : kMaxOtherBox)) return std::nullopt;
      h = nullptr;  // fetch() replaces buf
      if (!have(pos, box)) fetch(pos, box);
      if (!have(pos, box)) return std::nullopt;
      layout.prefetched[pos] = buf.substr(static_cast<size_t>(pos - buf_start), static_cast<size_t>(box));
      if (moof) {
        const std::string& kept = layout.prefetched[pos];
        check_moof_sample_counts(reinterpret_cast<const uint8_t*>(kept.data()), box, pos, size, source.name());
      }
    }
    pos += box;
  }
  if (!moov) return std::nullopt;
  return layout;
}

TablesOnlySource::TablesOnlySource(ByteSource& inner, TablesLayout layout)
    : ByteSource(inner.name()), inner_(inner), layout_(std::move(layout)) {
  fetched_ = layout_.header_bytes;
}

int64_t TablesOnlySource::copy_real(int64_t offset, uint8_t* dst, int64_t len) {
  auto it = layout_.prefetched.upper_bound(offset);
  if (it != layout_.prefetched.begin()) {
    --it;
    const int64_t start = it->first;
    const int64_t end = start + static_cast<int64_t>(it->second.size());
    if (offset >= start && offset < end) {
      const int64_t n = std::min(len, end - offset);
      std::memcpy(dst, it->second.data() + (offset - start), static_cast<size_t>(n));
      return n;
    }
  }
  // Bytes outside every box the scan kept (not expected: the boxes tile the file).
  int64_t n = inner_.read_at(offset, dst, len);
  if (n > 0) fetched_ += n;
  return n;
}

int64_t TablesOnlySource::read_at(int64_t offset, uint8_t* dst, int64_t len) {
  if (offset < 0 || offset >= size() || len <= 0) return 0;
  len = std::min(len, size() - offset);
  int64_t done = 0;
  while (done < len) {
    const int64_t at = offset + done;
    // The first payload range ending after `at`.
    auto it = std::upper_bound(layout_.payload.begin(), layout_.payload.end(), at,
                               [](int64_t v, const ByteRange& r) { return v < r.end; });
    int64_t n;
    if (it != layout_.payload.end() && at >= it->start) {
      n = std::min(len - done, it->end - at);
      std::memset(dst + done, 0, static_cast<size_t>(n));
      zeroed_ += n;
      // Overlays inside [at, at + n): the first one starting at or before `at`, then the rest.
      auto o = overlays_.upper_bound(at);
      if (o != overlays_.begin()) --o;
      for (; o != overlays_.end() && o->first < at + n; ++o) {
        const int64_t os = o->first;
        const int64_t oe = os + static_cast<int64_t>(o->second.size());
        const int64_t s = std::max(os, at);
        const int64_t e = std::min(oe, at + n);
        if (s < e) std::memcpy(dst + done + (s - at), o->second.data() + (s - os), static_cast<size_t>(e - s));
      }
    } else {
      const int64_t limit = it != layout_.payload.end() ? it->start : size();
      n = copy_real(at, dst + done, std::min(len - done, limit - at));
      if (n <= 0) break;
    }
    done += n;
  }
  count(done);
  return done;
}

}  // namespace vidlake
