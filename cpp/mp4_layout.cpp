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
// check_mp4_tables walks at most this many top-level boxes (a fragmented file has two per
// fragment: a 10-hour one with 2-second fragments, 36,000).
constexpr int64_t kMaxTopLevelBoxes = int64_t{1} << 20;

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
// the total size it declares (size 0: to the end of the enclosing box) and its header size, or
// false when the header is not all readable or the size is below the header's (or beyond int64).
bool declared_box(const uint8_t* p, int64_t avail, int64_t left, int64_t& box, int64_t& header) {
  if (avail < 8) return false;
  box = be32(p);
  header = 8;
  if (box == 1) {
    if (avail < 16) return false;
    const uint64_t big = (static_cast<uint64_t>(be32(p + 8)) << 32) | be32(p + 12);
    if (big > static_cast<uint64_t>(INT64_MAX)) return false;
    box = static_cast<int64_t>(big);
    header = 16;
  } else if (box == 0) {
    box = left;
  }
  return box >= header;
}

// The same, and false too when the box does not fit in the enclosing one.
bool box_header(const uint8_t* p, int64_t avail, int64_t left, int64_t& box, int64_t& header) {
  return declared_box(p, avail, left, box, header) && box <= left;
}

// trun flags with a 4-byte field per sample: duration, size, flags, composition offset.
constexpr uint32_t kTrunPerSampleFields[] = {0x100, 0x200, 0x400, 0x800};

// Note [Table entry counts]: what a walk of one top-level box knows.
struct TableWalk {
  int64_t file_size;
  int64_t after_box;  // bytes of the file after the top-level box (a trun's samples live there)
  const std::string& name;
  uint32_t handler = 0;  // the last hdlr's handler type: how stsd entries are laid out
};

constexpr uint32_t fourcc(const char* t) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(t[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(t[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(t[2])) << 8) | static_cast<uint32_t>(static_cast<uint8_t>(t[3]));
}

std::string type_name(uint32_t t) {
  std::string s(4, '?');
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((t >> (24 - 8 * i)) & 0xff);
    if (c >= 0x20 && c <= 0x7e) s[static_cast<size_t>(i)] = c;
  }
  return s;
}

[[noreturn]] void refuse_table(const TableWalk& w, uint32_t type, int64_t pos, const std::string& what) {
  throw DecodeError(w.name + ": damaged MP4: the " + type_name(type) + " box at offset " + std::to_string(pos) + " " +
                    what);
}

// `count` entries of `entry` bytes each, starting `at` bytes into a body of `len` bytes.
void check_entries(const TableWalk& w, uint32_t type, int64_t pos, int64_t len, int64_t at, int64_t count,
                   int64_t entry, const char* what = "entries") {
  const int64_t most = std::max<int64_t>(len - at, 0) / entry;
  if (count > most) {
    refuse_table(w, type, pos,
                 "lists " + std::to_string(count) + " " + what + ", more than its " + std::to_string(len) + " bytes hold (" +
                     std::to_string(most) + ")");
  }
}

// A table box's body (`len` bytes; `pos` is the box's file offset).
void check_table(const TableWalk& w, uint32_t type, const uint8_t* b, int64_t len, int64_t pos) {
  auto need = [&](int64_t fixed) {
    if (len < fixed) {
      refuse_table(w, type, pos, "has " + std::to_string(len) + " bytes, fewer than its " + std::to_string(fixed) +
                                     "-byte header");
    }
  };
  switch (type) {
    case fourcc("stts"):
    case fourcc("ctts"):
    case fourcc("co64"):
      need(8);
      check_entries(w, type, pos, len, 8, be32(b + 4), 8);
      break;
    case fourcc("stss"):
    case fourcc("stps"):
    case fourcc("stco"):
      need(8);
      check_entries(w, type, pos, len, 8, be32(b + 4), 4);
      break;
    case fourcc("stsc"):
      need(8);
      check_entries(w, type, pos, len, 8, be32(b + 4), 12);
      break;
    case fourcc("elst"):
      need(8);
      check_entries(w, type, pos, len, 8, be32(b + 4), b[0] == 1 ? 20 : 12);
      break;
    case fourcc("stsz"): {
      need(12);
      const int64_t sample_size = be32(b + 4), count = be32(b + 8);
      if (sample_size == 0) {
        check_entries(w, type, pos, len, 12, count, 4, "samples");
      } else if (count > w.file_size / sample_size) {
        refuse_table(w, type, pos,
                     "lists " + std::to_string(count) + " samples of " + std::to_string(sample_size) +
                         " bytes, more than the file's " + std::to_string(w.file_size) + " bytes hold");
      }
      break;
    }
    case fourcc("stz2"): {
      need(12);
      const int64_t field_bits = b[7], count = be32(b + 8);
      if (field_bits > 0 && count > std::max<int64_t>(len - 12, 0) * 8 / field_bits) {
        refuse_table(w, type, pos,
                     "lists " + std::to_string(count) + " samples of " + std::to_string(field_bits) +
                         " bits, more than its " + std::to_string(len) + " bytes hold");
      }
      break;
    }
    case fourcc("sbgp"): {
      const int64_t at = b[0] == 1 ? 12 : 8;
      need(at + 4);
      check_entries(w, type, pos, len, at + 4, be32(b + at), 8);
      break;
    }
    case fourcc("tfra"): {
      need(16);
      const uint32_t sizes = be32(b + 8);
      const int64_t entry = (b[0] == 1 ? 16 : 8) + ((sizes >> 4) & 3) + 1 + ((sizes >> 2) & 3) + 1 + (sizes & 3) + 1;
      check_entries(w, type, pos, len, 16, be32(b + 12), entry);
      break;
    }
    case fourcc("trun"): {
      need(8);
      const uint32_t flags = be32(b) & 0xffffff;
      const int64_t count = be32(b + 4);
      const int64_t fixed = 8 + ((flags & 0x1) ? 4 : 0) + ((flags & 0x4) ? 4 : 0);  // data offset, first flags
      int64_t per_sample = 0;
      for (uint32_t f : kTrunPerSampleFields) per_sample += (flags & f) ? 4 : 0;
      if (per_sample > 0) {
        check_entries(w, type, pos, len, fixed, count, per_sample, "samples");
      } else if (count > w.after_box) {
        refuse_table(w, type, pos,
                     "lists " + std::to_string(count) + " samples, more than the " + std::to_string(w.after_box) +
                         " bytes after its moof could carry");
      }
      break;
    }
    default:
      break;
  }
}

void walk_children(TableWalk& w, const uint8_t* p, int64_t len, int64_t pos, int depth);

// The child boxes of the stsd entries (video and audio sample entries; the demuxer parses the
// bytes after an entry's fixed fields as boxes).
void walk_sample_entries(TableWalk& w, const uint8_t* b, int64_t len, int64_t pos, int depth) {
  if (len < 8) return;
  int64_t at = 8;  // version and flags, entry count
  while (at + 8 <= len) {
    const int64_t size = be32(b + at);
    if (size < 8) return;
    if (size > len - at) {
      // The demuxer bounds an entry's child boxes by the entry's own size, not by the stsd's:
      // an avcC in an entry saying 4 GB could ask for 700 MB of extradata from a 1.5 KB file.
      refuse_table(w, be32(b + at + 4), pos + at,
                   "(a sample entry) says " + std::to_string(size) + " bytes, more than the " +
                       std::to_string(len - at) + " left in its stsd");
    }
    const int64_t entry = size;
    const uint8_t* e = b + at;
    int64_t fixed = 0;  // bytes from the entry's start to its child boxes
    if (w.handler == fourcc("vide") && entry >= 86) {
      fixed = 86;
      const int depth_bits = (e[82] << 8) | e[83], color_table = (e[84] << 8) | e[85];
      const int bits = depth_bits & 0x1f;
      if (color_table == 0 && (bits == 1 || bits == 2 || bits == 4 || bits == 8) && (depth_bits & 0x20) == 0) {
        if (entry < 94) return;  // a palette the walk cannot place: the demuxer reads past the entry
        const int64_t start = be32(e + 86), end = (e[92] << 8) | e[93];
        fixed = 94 + (start <= 255 && end <= 255 && end >= start ? (end - start + 1) * 8 : 0);
      }
    } else if (w.handler == fourcc("soun") && entry >= 36) {
      // The demuxer reads version 1 and 2 fields in QuickTime files only: walk from both places.
      const int version = (e[16] << 8) | e[17];
      const int64_t extended = version == 1 ? 52 : version == 2 ? 72 : 0;
      if (extended > 0 && extended < entry) {
        walk_children(w, e + extended, entry - extended, pos + at + extended, depth + 1);
      }
      fixed = 36;
    }
    if (fixed > 0 && fixed < entry) walk_children(w, e + fixed, entry - fixed, pos + at + fixed, depth + 1);
    at += entry;
  }
}

bool is_container(uint32_t t) {
  switch (t) {
    case fourcc("moov"):
    case fourcc("hoov"):
    case fourcc("trak"):
    case fourcc("mdia"):
    case fourcc("minf"):
    case fourcc("stbl"):
    case fourcc("edts"):
    case fourcc("dinf"):
    case fourcc("udta"):
    case fourcc("mvex"):
    case fourcc("moof"):
    case fourcc("traf"):
    case fourcc("mfra"):
    case fourcc("sinf"):
    case fourcc("schi"):
    case fourcc("wave"):
    case fourcc("ilst"):
    case fourcc("tref"):
      return true;
    default:
      return false;
  }
}

bool is_table(uint32_t t) {
  switch (t) {
    case fourcc("stts"):
    case fourcc("ctts"):
    case fourcc("co64"):
    case fourcc("stss"):
    case fourcc("stps"):
    case fourcc("stco"):
    case fourcc("stsc"):
    case fourcc("elst"):
    case fourcc("stsz"):
    case fourcc("stz2"):
    case fourcc("sbgp"):
    case fourcc("tfra"):
    case fourcc("trun"):
      return true;
    default:
      return false;
  }
}

// One box: its body `b` of `len` bytes at file offset `at`; `pos` is the box's file offset.
void walk_box(TableWalk& w, uint32_t type, const uint8_t* b, int64_t len, int64_t pos, int64_t at, int depth) {
  if (depth > 64) return;  // deeper than any file; the demuxer's own limit is lower
  if (type == fourcc("cmov")) {
    refuse_table(w, type, pos, "holds a compressed movie header, which vidlake does not read");
  }
  if (type == fourcc("hdlr") && len >= 12) {
    w.handler = be32(b + 8);
  } else if (type == fourcc("stsd")) {
    walk_sample_entries(w, b, len, at, depth);
  } else if (type == fourcc("meta")) {
    // The demuxer looks for the hdlr tag four bytes at a time and parses boxes from its header.
    for (int64_t i = 4; i + 4 <= len; i += 4) {
      if (be32(b + i) == fourcc("hdlr")) {
        walk_children(w, b + i - 4, len - (i - 4), at + i - 4, depth + 1);
        break;
      }
    }
  } else if (is_container(type)) {
    walk_children(w, b, len, at, depth + 1);
  } else {
    check_table(w, type, b, len, pos);
  }
}

// The boxes tiling [p, p + len) (file offset `pos`), cut at its end as the demuxer cuts them.
void walk_children(TableWalk& w, const uint8_t* p, int64_t len, int64_t pos, int depth) {
  int64_t at = 0;
  while (at + 8 <= len) {
    int64_t size = 0, header = 0;
    if (!declared_box(p + at, len - at, len - at, size, header)) return;
    size = std::min(size, len - at);
    walk_box(w, be32(p + at + 4), p + at + header, size - header, pos + at, pos + at + header, depth);
    at += size;
  }
}

// A top-level box of type `type` (body `b` of `len` bytes, the box at `pos`, ending at `end`).
void walk_top(uint32_t type, const uint8_t* b, int64_t len, int64_t pos, int64_t end, int64_t file_size,
              const std::string& name) {
  TableWalk w{file_size, std::max<int64_t>(file_size - end, 0), name};
  walk_box(w, type, b, len, pos, end - len, 0);
}

}  // namespace

void check_box_tables(const uint8_t* box, int64_t len, int64_t pos, int64_t file_size, const std::string& name) {
  int64_t size = 0, header = 0;
  if (!box_header(box, len, len, size, header)) return;
  walk_top(be32(box + 4), box + header, size - header, pos, pos + size, file_size, name);
}

void check_mp4_tables(ByteSource& source) {
  const int64_t size = source.size();
  uint8_t h[16];
  int64_t pos = 0;
  // Any file: libavformat's mov probe takes a file whose first box is not one it knows (a damaged
  // ftyp) when a later one is. Elsewhere the walk ends at once (sizes below 8) or soon (a box
  // running past the end is its last), and reads only boxes of the types it checks.
  for (int64_t boxes = 0; pos + 8 <= size && boxes < kMaxTopLevelBoxes; ++boxes) {
    const int64_t got = source.read_at(pos, h, std::min<int64_t>(16, size - pos));
    int64_t box = 0, header = 0;
    if (!declared_box(h, got, size - pos, box, header)) return;  // where the demuxer stops too
    const uint32_t type = be32(h + 4);
    const bool walked = is_container(type) || is_table(type) || type == fourcc("meta") || type == fourcc("cmov");
    if (walked && box > size - pos) {
      // The demuxer does not cut a top-level box at the end of the file: the boxes inside one
      // that says more could claim as much (an avcC's extradata is allocated before it is read).
      throw DecodeError(source.name() + ": truncated or damaged MP4: the " + type_name(type) +
                        " box at offset " + std::to_string(pos) + " says " + std::to_string(box) +
                        " bytes, but the file ends " + std::to_string(size - pos) + " bytes after its start");
    }
    box = std::min(box, size - pos);
    if (walked && box <= kMaxTableBox) {
      std::string body(static_cast<size_t>(box - header), '\0');
      if (source.read_at(pos + header, reinterpret_cast<uint8_t*>(&body[0]), box - header) != box - header) return;
      walk_top(type, reinterpret_cast<const uint8_t*>(body.data()), box - header, pos, pos + box, size,
               source.name());
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
      const std::string& kept = layout.prefetched[pos];
      check_box_tables(reinterpret_cast<const uint8_t*>(kept.data()), box, pos, size, source.name());
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
