#include "mkv_layout.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>

namespace vidlake {

namespace {

constexpr int64_t kUnknown = -1;              // an element of unknown size (all size bits set)
constexpr int64_t kFirstRead = 2048;          // a top-level header, and the head of a cluster
constexpr int64_t kMinRead = 256;             // the smallest window inside a cluster
constexpr int64_t kMaxRead = 256 * 1024;      // the largest
constexpr int64_t kMaxElement = int64_t{64} << 20;  // a non-cluster top-level element read whole
constexpr int64_t kMaxChild = int64_t{1} << 20;     // a cluster or group child other than a block
constexpr int64_t kMaxHeaderBytes = int64_t{64} << 20;
constexpr int64_t kHeadKeep = 256;            // frame bytes kept when the window held them

constexpr uint32_t kEbml = 0x1A45DFA3;
constexpr uint32_t kSegment = 0x18538067;
constexpr uint32_t kCluster = 0x1F43B675;
constexpr uint32_t kTracks = 0x1654AE6B;
constexpr uint32_t kSeekHead = 0x114D9B74;
constexpr uint32_t kCues = 0x1C53BB6B;
constexpr uint32_t kVoid = 0xEC;
constexpr uint32_t kSimpleBlock = 0xA3;
constexpr uint32_t kBlockGroup = 0xA0;
constexpr uint32_t kBlock = 0xA1;
constexpr uint32_t kReferenceBlock = 0xFB;
constexpr uint32_t kEncryptedBlock = 0xAF;

// Children of a Cluster or BlockGroup that the demuxer knows (anything else inside an
// unknown-size cluster ends the walk: the demuxer's rules for it are not mirrored).
bool known_cluster_child(uint32_t id) {
  switch (id) {
    case 0xE7:    // Timestamp
    case 0xA7:    // Position
    case 0xAB:    // PrevSize
    case 0xBF:    // CRC-32
    case 0xEC:    // Void
    case 0x5854:  // SilentTracks
    case kSimpleBlock:
    case kBlockGroup:
      return true;
    default:
      return false;
  }
}

// Top-level elements (Segment children): one of these ends an unknown-size cluster.
bool top_level(uint32_t id) {
  switch (id) {
    case kCluster:
    case 0x114D9B74:  // SeekHead
    case 0x1549A966:  // Info
    case 0x1654AE6B:  // Tracks
    case 0x1C53BB6B:  // Cues
    case 0x1941A469:  // Attachments
    case 0x1043A770:  // Chapters
    case 0x1254C367:  // Tags
    case kEbml:
    case kSegment:
      return true;
    default:
      return false;
  }
}

int vint_length(uint8_t b) {
  for (int n = 1; n <= 8; ++n) {
    if (b & (0x80 >> (n - 1))) return n;
  }
  return 0;
}

struct Header {
  uint32_t id = 0;
  int64_t size = kUnknown;
  int len = 0;
};

// 1: parsed; 0: needs more than `avail` bytes; -1: not an element header.
int parse_header(const uint8_t* p, int64_t avail, Header& h) {
  if (avail < 1) return 0;
  const int idlen = vint_length(p[0]);
  if (idlen == 0 || idlen > 4) return -1;
  if (avail < idlen + 1) return 0;
  const int szlen = vint_length(p[idlen]);
  if (szlen == 0) return -1;
  if (avail < idlen + szlen) return 0;
  uint32_t id = 0;
  for (int i = 0; i < idlen; ++i) id = (id << 8) | p[i];
  const auto mask = static_cast<uint8_t>(0xFF >> szlen);
  uint64_t v = p[idlen] & mask;
  bool ones = v == mask;
  for (int i = 1; i < szlen; ++i) {
    v = (v << 8) | p[idlen + i];
    ones = ones && p[idlen + i] == 0xFF;
  }
  h.id = id;
  h.size = ones ? kUnknown : static_cast<int64_t>(v);
  h.len = idlen + szlen;
  return 1;
}

// The CodecIDs of the video tracks in a Tracks element body, with "+enc" appended to a track with
// ContentEncodings (compressed or encrypted frames). Empty when the body does not parse.
std::vector<std::string> video_codecs(const uint8_t* p, int64_t n) {
  std::vector<std::string> out;
  for (int64_t at = 0; at < n;) {
    Header e;
    if (parse_header(p + at, n - at, e) != 1 || e.size == kUnknown || e.size > n - at - e.len) return {};
    if (e.id == 0xAE) {  // TrackEntry
      const uint8_t* q = p + at + e.len;
      uint64_t type = 0;
      std::string codec;
      bool encoded = false;
      for (int64_t k = 0; k < e.size;) {
        Header c;
        if (parse_header(q + k, e.size - k, c) != 1 || c.size == kUnknown || c.size > e.size - k - c.len) return {};
        const uint8_t* v = q + k + c.len;
        if (c.id == 0x83) {  // TrackType
          for (int64_t i = 0; i < c.size && i < 8; ++i) type = (type << 8) | v[i];
        } else if (c.id == 0x86) {  // CodecID
          codec.assign(reinterpret_cast<const char*>(v), static_cast<size_t>(c.size));
          codec = codec.c_str();  // a string may be padded with NULs
        } else if (c.id == 0x6D80) {  // ContentEncodings
          encoded = true;
        }
        k += c.len + c.size;
      }
      if (type == 1) out.push_back(codec + (encoded ? "+enc" : ""));
    }
    at += e.len + e.size;
  }
  return out;
}

// Calls fn(id, body, size) for each child element of p[0, n); false when they do not tile it.
template <typename Fn>
bool for_each_child(const uint8_t* p, int64_t n, Fn fn) {
  for (int64_t at = 0; at < n;) {
    Header e;
    if (parse_header(p + at, n - at, e) != 1 || e.size == kUnknown || e.size > n - at - e.len) return false;
    fn(e.id, p + at + e.len, e.size);
    at += e.len + e.size;
  }
  return true;
}

uint64_t uint_value(const uint8_t* v, int64_t n) {
  uint64_t x = 0;
  for (int64_t i = 0; i < n && i < 8; ++i) x = (x << 8) | v[i];
  return x;
}

// Bytes of one file region held for parsing; `start` only moves forward.
struct Window {
  int64_t start = 0;
  std::string data;
  int64_t end() const { return start + static_cast<int64_t>(data.size()); }
  int64_t avail(int64_t pos) const { return pos >= start && pos <= end() ? end() - pos : 0; }
  const uint8_t* at(int64_t pos) const { return reinterpret_cast<const uint8_t*>(data.data()) + (pos - start); }
};

struct Need {
  int64_t pos = 0;
  int64_t len = 0;  // 0: nothing needed
};

enum class Step { kNeed, kDone, kFail };

// One cluster being walked.
struct Cursor {
  int64_t pos = 0;
  int64_t end = kUnknown;        // kUnknown: an unknown-size cluster, ends at a top-level id
  int64_t limit = 0;             // where the cluster must end at the latest (segment end)
  int64_t group_end = kUnknown;  // inside a BlockGroup: its end
  int64_t group_block = -1;      // the group's Block (index into blocks), -1 before it
  bool group_ref = false;
  Window win;
  int64_t read_len = kFirstRead;
  int64_t used = 0;  // header bytes windows held before a frame ran past them (a decaying maximum)
  Need need;
};

class Scanner {
 public:
  Scanner(ByteSource& source, const std::vector<std::string>& codecs)
      : source_(source), size_(source.size()), codecs_(codecs) {}
  std::optional<MkvLayout> run();

 private:
  bool fetch_into(Window& w, int64_t pos, int64_t len);
  bool deliver(Cursor& c, const std::string& bytes, int64_t at);
  Need request(Cursor& c, int64_t pos, int64_t len);
  Step step(Cursor& c);
  Step parse_block(Cursor& c, int64_t body, int64_t size, bool simple, Need& need);
  bool walk(std::vector<Cursor>& cursors);
  void keep(int64_t at, const std::string& bytes);
  void seed_clusters(int64_t cues, int64_t seg_body, int64_t seg_end, int64_t from);
  void zero(int64_t start, int64_t end) {
    if (end > start) layout_.tables.payload.push_back(ByteRange{start, end});
  }

  ByteSource& source_;
  const int64_t size_;
  const std::vector<std::string>& codecs_;
  MkvLayout layout_;
  std::map<int64_t, std::string> pieces_;  // everything fetched, non-overlapping
  std::map<int64_t, std::string> seeds_;   // first bytes at the cluster positions the Cues list
  int64_t fetched_ = 0;
};

void Scanner::keep(int64_t at, const std::string& bytes) {
  int64_t s = at;
  const int64_t e = at + static_cast<int64_t>(bytes.size());
  // Clip against the pieces already kept (the same file bytes: any copy will do).
  auto it = pieces_.upper_bound(s);
  if (it != pieces_.begin()) {
    auto prev = std::prev(it);
    s = std::max(s, prev->first + static_cast<int64_t>(prev->second.size()));
  }
  while (s < e) {
    const int64_t next = it == pieces_.end() ? e : std::min(e, it->first);
    if (next > s) pieces_[s] = bytes.substr(static_cast<size_t>(s - at), static_cast<size_t>(next - s));
    if (it == pieces_.end()) break;
    s = std::max(s, it->first + static_cast<int64_t>(it->second.size()));
    ++it;
  }
}

// Reads [pos, pos + len) (clipped to the file) into w, keeping what of w from pos on it holds.
bool Scanner::fetch_into(Window& w, int64_t pos, int64_t len) {
  len = std::min(len, size_ - pos);
  if (len <= 0) return false;
  const int64_t from = w.avail(pos) > 0 ? w.end() : pos;
  if (from >= pos + len) return true;
  std::string got(static_cast<size_t>(pos + len - from), '\0');
  const int64_t n = source_.read_at(from, reinterpret_cast<uint8_t*>(&got[0]), pos + len - from);
  ++layout_.requests;
  if (n <= 0) return false;
  got.resize(static_cast<size_t>(n));
  fetched_ += n;
  keep(from, got);
  if (from == pos) {
    w.start = pos;
    w.data = std::move(got);
  } else {
    w.data.erase(0, static_cast<size_t>(pos - w.start));
    w.start = pos;
    w.data += got;
  }
  return true;
}

bool Scanner::deliver(Cursor& c, const std::string& bytes, int64_t at) {
  if (bytes.empty()) return false;
  fetched_ += static_cast<int64_t>(bytes.size());
  keep(at, bytes);
  if (!c.win.data.empty() && at == c.win.end()) {
    // Extends the window; what lies before the element being parsed is not needed again.
    const auto drop = static_cast<size_t>(std::clamp<int64_t>(c.pos - c.win.start, 0, c.win.end() - c.win.start));
    c.win.data.erase(0, drop);
    c.win.start += static_cast<int64_t>(drop);
    c.win.data += bytes;
  } else {
    c.win.start = at;
    c.win.data = bytes;
  }
  return true;
}

// What cursor c must fetch to have [pos, pos + len), adapting its window (see the Note).
Need Scanner::request(Cursor& c, int64_t pos, int64_t len) {
  // The window must hold the element being parsed (c.pos) through pos + len: extend it when it
  // holds c.pos, else start a new one there.
  const bool holds = !c.win.data.empty() && c.pos >= c.win.start && c.pos <= c.win.end();
  if (holds) {
    c.read_len = std::min(kMaxRead, c.read_len * 2);  // headers packed close: a larger window
  } else if (!c.win.data.empty()) {
    // A frame ran past the window: the next one needs about as many header bytes (small
    // frames of other tracks included) as the recent ones held before it.
    c.read_len = std::clamp(2 * c.used + 64, kMinRead, kMaxRead);
  }
  const int64_t from = holds ? c.win.end() : c.pos;
  const int64_t stop = c.end != kUnknown ? c.end : size_;
  int64_t want_end = std::max(pos + len, from + c.read_len);
  want_end = std::min(want_end, std::max(stop, pos + len));
  want_end = std::min(want_end, size_);
  return Need{from, want_end - from};
}

// Parses a SimpleBlock/Block body [body, body + size): the block header is real, the frame data payload.
Step Scanner::parse_block(Cursor& c, int64_t body, int64_t size, bool simple, Need& need) {
  const int64_t avail = std::min(c.win.avail(body), size);
  const uint8_t* p = c.win.at(body);
  auto more = [&](int64_t n) {
    if (n > size) return Step::kFail;  // the header runs past the block
    need = request(c, body, std::min(size, n + 64));
    return Step::kNeed;
  };
  if (avail < 1) return more(16);
  const int tl = vint_length(p[0]);
  if (tl == 0) return Step::kFail;
  if (avail < tl + 3) return more(tl + 3);
  uint64_t track = p[0] & (0xFF >> tl);
  for (int i = 1; i < tl; ++i) track = (track << 8) | p[i];
  const uint8_t flags = p[tl + 2];
  int64_t h = tl + 3;
  const int lacing = (flags >> 1) & 3;
  int laces = 1;
  if (lacing != 0) {
    if (avail < h + 1) return more(h + 1);
    laces = p[h] + 1;
    ++h;
    int64_t total = 0;  // bytes of all laces but the last
    if (lacing == 1) {  // Xiph
      for (int i = 0; i < laces - 1; ++i) {
        int64_t lace = 0;
        for (;;) {
          if (avail < h + 1) return more(h + 64);
          const uint8_t b = p[h++];
          lace += b;
          if (b != 255) break;
        }
        total += lace;
      }
    } else if (lacing == 3) {  // EBML
      int64_t lace = 0;
      for (int i = 0; i < laces - 1; ++i) {
        if (avail < h + 1) return more(h + 64);
        const int n = vint_length(p[h]);
        if (n == 0) return Step::kFail;
        if (avail < h + n) return more(h + n + 64);
        uint64_t v = p[h] & (0xFF >> n);
        for (int k = 1; k < n; ++k) v = (v << 8) | p[h + k];
        h += n;
        if (i == 0) {
          lace = static_cast<int64_t>(v);
        } else {
          lace += static_cast<int64_t>(v) - ((int64_t{1} << (7 * n - 1)) - 1);  // signed difference
        }
        // A lace is never larger than its block: checked on each one, so neither the running
        // size (differences of up to 2^56) nor the sum of 255 of them can overflow.
        if (lace < 0 || lace > size) return Step::kFail;
        total += lace;
        if (total > size) return Step::kFail;
      }
    } else if ((size - h) % laces != 0) {  // fixed
      return Step::kFail;
    }
    if (total > size - h) return Step::kFail;
  }
  if (h > size) return Step::kFail;
  MkvBlock b;
  b.pos = body;
  b.data = body + h;
  b.size = size - h;
  b.track = track;
  b.laces = laces;
  b.key = simple && (flags & 0x80) != 0;
  const int64_t held = std::min(kHeadKeep, avail - h);
  if (held > 0) b.head.assign(reinterpret_cast<const char*>(p + h), static_cast<size_t>(held));
  if (!simple) c.group_block = static_cast<int64_t>(layout_.blocks.size());
  layout_.blocks.push_back(b);
  zero(b.data, body + size);
  if (body + size > c.win.end()) c.used = std::max(b.data - c.win.start, c.used - c.used / 8);
  return Step::kDone;
}

// Walks cursor c as far as its window allows.
Step Scanner::step(Cursor& c) {
  for (;;) {
    if (c.group_end != kUnknown && c.pos == c.group_end) {
      if (c.group_block < 0) return Step::kFail;  // a BlockGroup without a Block
      layout_.blocks[static_cast<size_t>(c.group_block)].key = !c.group_ref;
      c.group_end = kUnknown;
      c.group_block = -1;
      c.group_ref = false;
    }
    if (c.end != kUnknown && c.pos == c.end) return Step::kDone;
    if (c.end == kUnknown && c.pos == c.limit) {
      if (c.group_end != kUnknown) return Step::kFail;
      c.end = c.pos;
      return Step::kDone;
    }
    const int64_t parent_end = c.group_end != kUnknown ? c.group_end : c.end != kUnknown ? c.end : c.limit;
    if (c.pos > parent_end) return Step::kFail;
    Header h;
    const int r = parse_header(c.win.at(c.pos), std::min(c.win.avail(c.pos), parent_end - c.pos), h);
    if (r < 0) return Step::kFail;
    if (r == 0) {
      if (c.win.avail(c.pos) >= parent_end - c.pos) return Step::kFail;  // a header cut by its parent's end
      c.need = request(c, c.pos, std::min<int64_t>(12, parent_end - c.pos));
      return Step::kNeed;
    }
    if (c.end == kUnknown && c.group_end == kUnknown && !known_cluster_child(h.id)) {
      if (!top_level(h.id)) return Step::kFail;
      c.end = c.pos;  // the next top-level element ends an unknown-size cluster
      return Step::kDone;
    }
    if (h.size == kUnknown) return Step::kFail;
    const int64_t body = c.pos + h.len;
    const int64_t end = body + h.size;
    if (end > parent_end || end > size_) return Step::kFail;  // e.g. a recording cut mid-cluster
    ++layout_.tables.boxes;
    if ((h.id == kSimpleBlock && c.group_end == kUnknown) || (h.id == kBlock && c.group_end != kUnknown)) {
      if (h.id == kBlock && c.group_block >= 0) return Step::kFail;  // two Blocks in one group
      Need need;
      const Step s = parse_block(c, body, h.size, h.id == kSimpleBlock, need);
      if (s == Step::kNeed) {
        c.need = need;
        return s;
      }
      if (s == Step::kFail) return s;
      c.pos = end;
    } else if (h.id == kBlockGroup && c.group_end == kUnknown) {
      c.group_end = end;
      c.group_block = -1;
      c.group_ref = false;
      c.pos = body;
    } else if (h.id == kVoid) {
      zero(body, end);
      c.pos = end;
    } else if (h.id == kEncryptedBlock || h.id == kBlockGroup || h.id == kBlock || h.id == kSimpleBlock) {
      return Step::kFail;
    } else {
      // A small child (Timestamp, ReferenceBlock, BlockDuration, CRC-32, BlockAdditions, ...), read whole.
      if (h.size > kMaxChild) return Step::kFail;
      if (c.win.avail(c.pos) < end - c.pos) {
        c.need = request(c, c.pos, end - c.pos);
        return Step::kNeed;
      }
      if (h.id == kReferenceBlock && c.group_end != kUnknown) c.group_ref = true;
      c.pos = end;
    }
  }
}

// Walks every cursor to its end, fetching one window per unfinished cursor per round.
bool Scanner::walk(std::vector<Cursor>& cursors) {
  std::vector<size_t> active;
  for (size_t i = 0; i < cursors.size(); ++i) active.push_back(i);
  while (!active.empty()) {
    std::vector<size_t> waiting;
    std::vector<ByteRange> ranges;
    for (size_t i : active) {
      Cursor& c = cursors[i];
      const Step s = step(c);
      if (s == Step::kFail) return false;
      if (s == Step::kNeed) {
        if (c.need.len <= 0) return false;
        waiting.push_back(i);
        ranges.push_back(ByteRange{c.need.pos, c.need.pos + c.need.len});
      }
    }
    if (ranges.empty()) break;
    std::vector<std::string> got = source_.read_ranges(ranges);
    ++layout_.requests;
    if (got.size() != ranges.size()) return false;
    for (size_t k = 0; k < waiting.size(); ++k) {
      if (!deliver(cursors[waiting[k]], got[k], ranges[k].start)) return false;
    }
    if (fetched_ > kMaxHeaderBytes && fetched_ > size_ / 4) return false;  // not worth it: demux
    active = std::move(waiting);
  }
  return true;
}

// The Cues list where clusters start: their first bytes are fetched in one batched call, so the
// hop from one cluster header to the next (kept, as it checks that the clusters tile the
// segment) reads nothing for them. Only an optimisation: a wrong or missing Cue costs a read.
void Scanner::seed_clusters(int64_t cues, int64_t seg_body, int64_t seg_end, int64_t from) {
  Window cw;
  if (!fetch_into(cw, cues, kFirstRead)) return;
  Header h;
  if (parse_header(cw.at(cues), cw.avail(cues), h) != 1 || h.id != kCues || h.size == kUnknown ||
      h.size > kMaxElement || cues + h.len + h.size > seg_end) {
    return;
  }
  const int64_t end = cues + h.len + h.size;
  if (!fetch_into(cw, cues, end - cues) || cw.avail(cues) < end - cues) return;
  std::vector<int64_t> at;
  for_each_child(cw.at(cues + h.len), h.size, [&](uint32_t id, const uint8_t* v, int64_t n) {
    if (id != 0xBB) return;  // CuePoint
    for_each_child(v, n, [&](uint32_t cid, const uint8_t* cv, int64_t cn) {
      if (cid != 0xB7) return;  // CueTrackPositions
      for_each_child(cv, cn, [&](uint32_t tid, const uint8_t* tv, int64_t tn) {
        if (tid != 0xF1) return;  // CueClusterPosition
        const uint64_t off = uint_value(tv, tn);
        if (off < static_cast<uint64_t>(seg_end - seg_body)) at.push_back(seg_body + static_cast<int64_t>(off));
      });
    });
  });
  seeds_[cues] = cw.data.substr(0, static_cast<size_t>(end - cues));
  std::sort(at.begin(), at.end());
  at.erase(std::unique(at.begin(), at.end()), at.end());
  std::vector<ByteRange> ranges;
  for (int64_t p : at) {
    if (p > from && (p < cues || p >= end)) ranges.push_back(ByteRange{p, std::min(seg_end, p + kFirstRead)});
  }
  if (ranges.empty() || ranges.size() > 100000) return;
  std::vector<std::string> got = source_.read_ranges(ranges);
  ++layout_.requests;
  if (got.size() != ranges.size()) return;
  for (size_t k = 0; k < ranges.size(); ++k) {
    if (got[k].empty()) continue;
    fetched_ += static_cast<int64_t>(got[k].size());
    keep(ranges[k].start, got[k]);
    seeds_[ranges[k].start] = std::move(got[k]);
  }
}

std::optional<MkvLayout> Scanner::run() {
  if (size_ < 16) return std::nullopt;
  Window w;
  int64_t pos = 0;
  // Header at pos (0: needs more), fetching as needed.
  auto header = [&](Header& h) -> int {
    auto seed = seeds_.find(pos);
    if (w.avail(pos) == 0 && seed != seeds_.end()) {
      w.start = pos;
      w.data = std::move(seed->second);
      seeds_.erase(seed);
    }
    for (int round = 0; round < 2; ++round) {
      const int r = parse_header(w.at(pos), w.avail(pos), h);
      if (r != 0) return r;
      if (w.avail(pos) >= size_ - pos) return -1;
      if (!fetch_into(w, pos, kFirstRead)) return -1;
    }
    return parse_header(w.at(pos), w.avail(pos), h);
  };
  auto whole = [&](int64_t len) { return w.avail(pos) >= len || (fetch_into(w, pos, len) && w.avail(pos) >= len); };
  Header h;
  if (header(h) != 1 || h.id != kEbml || h.size == kUnknown || h.size > kFirstRead) return std::nullopt;
  if (!whole(h.len + h.size)) return std::nullopt;
  pos += h.len + h.size;
  if (header(h) != 1 || h.id != kSegment) return std::nullopt;
  const int64_t seg_end = h.size == kUnknown ? size_ : pos + h.len + h.size;
  if (seg_end != size_) return std::nullopt;  // cut short, or bytes after the segment
  pos += h.len;
  const int64_t seg_body = pos;
  int64_t cues_at = -1;  // the Cues, as the SeekHead says (seeding waits for Tracks to be accepted)
  std::vector<Cursor> clusters;
  while (pos < seg_end) {
    const int r = header(h);
    if (r != 1) return std::nullopt;
    const int64_t body = pos + h.len;
    if (h.id == kCluster) {
      if (cues_at > pos) {
        seed_clusters(cues_at, seg_body, seg_end, pos);
        cues_at = 0;  // once
      }
      ++layout_.clusters;
      ++layout_.tables.boxes;
      Cursor c;
      c.pos = body;
      c.limit = seg_end;
      c.end = h.size == kUnknown ? kUnknown : body + h.size;
      if (c.end != kUnknown && c.end > seg_end) return std::nullopt;  // a cluster cut by the end of the file
      if (w.avail(body) > 0) {
        c.win.start = body;
        c.win.data = w.data.substr(static_cast<size_t>(body - w.start));
        if (c.end != kUnknown && c.win.end() > c.end) c.win.data.resize(static_cast<size_t>(c.end - body));
      }
      if (c.end == kUnknown) {
        // Walked on the spot: only its walk finds where the next element starts.
        std::vector<Cursor> one{std::move(c)};
        if (!walk(one)) return std::nullopt;
        pos = one[0].end;
        w = std::move(one[0].win);
      } else {
        clusters.push_back(std::move(c));
        pos = clusters.back().end;
      }
      continue;
    }
    if (h.size == kUnknown) return std::nullopt;
    const int64_t end = body + h.size;
    if (end > seg_end) return std::nullopt;
    ++layout_.tables.boxes;
    if (h.id == kVoid) {
      zero(body, end);
    } else {
      if (h.size > kMaxElement || !whole(end - pos)) return std::nullopt;
      if (h.id == kTracks && !codecs_.empty()) {
        // Before any cluster is walked: is there a video track the caller indexes this way?
        bool wanted = false;
        for (const std::string& c : video_codecs(w.at(body), h.size)) {
          wanted = wanted || std::find(codecs_.begin(), codecs_.end(), c) != codecs_.end();
        }
        if (!wanted) return std::nullopt;
      }
      if (h.id == kSeekHead && cues_at < 0) {
        // Where the Cues are (SeekID 1C 53 BB 6B): their cluster positions seed the hops.
        int64_t cues = -1;
        for_each_child(w.at(body), h.size, [&](uint32_t id, const uint8_t* v, int64_t n) {
          if (id != 0x4DBB) return;  // Seek
          uint64_t seek_id = 0;
          int64_t seek_pos = -1;
          for_each_child(v, n, [&](uint32_t cid, const uint8_t* cv, int64_t cn) {
            if (cid == 0x53AB) seek_id = uint_value(cv, cn);
            if (cid == 0x53AC && cn <= 8) seek_pos = static_cast<int64_t>(uint_value(cv, cn) & (~uint64_t{0} >> 1));
          });
          if (seek_id == kCues && seek_pos >= 0 && seek_pos < seg_end - seg_body) cues = seg_body + seek_pos;
        });
        if (cues > end) cues_at = cues;
      }
    }
    pos = end;
  }
  if (!walk(clusters)) return std::nullopt;
  if (layout_.blocks.empty()) return std::nullopt;

  // Payload ranges in file order (disjoint by construction); the kept pieces without them.
  std::vector<ByteRange>& payload = layout_.tables.payload;
  std::sort(payload.begin(), payload.end(), [](const ByteRange& a, const ByteRange& b) { return a.start < b.start; });
  for (size_t i = 1; i < payload.size(); ++i) {
    if (payload[i].start < payload[i - 1].end) return std::nullopt;
  }
  std::sort(layout_.blocks.begin(), layout_.blocks.end(),
            [](const MkvBlock& a, const MkvBlock& b) { return a.pos < b.pos; });
  std::map<int64_t, std::string>& real = layout_.tables.prefetched;
  for (auto& [start, bytes] : pieces_) {
    const int64_t end = start + static_cast<int64_t>(bytes.size());
    auto it = std::upper_bound(payload.begin(), payload.end(), start,
                               [](int64_t v, const ByteRange& r) { return v < r.end; });
    int64_t at = start;
    for (; at < end; ++it) {
      const int64_t stop = it == payload.end() ? end : std::min(end, std::max(at, it->start));
      if (stop > at) real[at] = bytes.substr(static_cast<size_t>(at - start), static_cast<size_t>(stop - at));
      if (it == payload.end()) break;
      at = std::max(stop, std::min(end, it->end));
    }
  }
  layout_.tables.header_bytes = fetched_;
  return std::move(layout_);
}

}  // namespace

const MkvBlock* MkvLayout::block_at(int64_t pos) const {
  auto it = std::lower_bound(blocks.begin(), blocks.end(), pos, [](const MkvBlock& b, int64_t v) { return b.pos < v; });
  return it != blocks.end() && it->pos == pos ? &*it : nullptr;
}

std::optional<MkvLayout> scan_mkv_layout(ByteSource& source, const std::vector<std::string>& video_codecs) {
  return Scanner(source, video_codecs).run();
}

}  // namespace vidlake
