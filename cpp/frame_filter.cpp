#include "frame_filter.h"

namespace vidlake {

namespace {

bool h264_is_vcl(uint8_t header) {
  int type = header & 0x1f;
  return type >= 1 && type <= 5;
}

bool hevc_is_vcl(uint8_t header) { return ((header >> 1) & 0x3f) < 32; }

// VP9 uncompressed header: is this frame shown (show_frame or show_existing_frame)?
bool vp9_frame_shown(const uint8_t* d, int64_t size) {
  if (size < 1) return false;
  int bit = 0;
  auto read = [&](int n) {
    int v = 0;
    for (int i = 0; i < n; ++i, ++bit) {
      if (bit / 8 >= size) return -1;
      v = (v << 1) | ((d[bit / 8] >> (7 - bit % 8)) & 1);
    }
    return v;
  };
  if (read(2) != 2) return true;  // not a VP9 frame header: let the decoder decide
  int low = read(1);
  int high = read(1);
  if (((high << 1) | low) == 3) read(1);
  if (read(1) == 1) return true;  // show_existing_frame
  read(1);                        // frame_type
  return read(1) == 1;            // show_frame
}

}  // namespace

FrameFilter::FrameFilter(AVCodecID codec_id, const std::string& extradata) : codec_id_(codec_id) {
  const auto* e = reinterpret_cast<const uint8_t*>(extradata.data());
  if (codec_id == AV_CODEC_ID_H264 && extradata.size() >= 7 && e[0] == 1) {
    nal_length_size_ = (e[4] & 3) + 1;
  } else if (codec_id == AV_CODEC_ID_HEVC && extradata.size() >= 23 && (e[0] == 1 || e[1] != 0)) {
    // hvcC (configurationVersion 1; some muxers wrote 0, hence the second test)
    if (!(e[0] == 0 && e[1] == 0 && (e[2] == 1 || (e[2] == 0 && e[3] == 1)))) {
      nal_length_size_ = (e[21] & 3) + 1;
    }
  }
}

// Calls fn(first byte of each NAL unit); false when the units do not split.
template <typename Fn>
bool FrameFilter::for_each_nal(const uint8_t* d, int64_t size, Fn fn) const {
  if (nal_length_size_ > 0) {
    int64_t pos = 0;
    while (size - pos >= nal_length_size_) {
      uint64_t len = 0;
      for (int i = 0; i < nal_length_size_; ++i) len = (len << 8) | d[pos + i];
      pos += nal_length_size_;
      if (len > static_cast<uint64_t>(size - pos)) return false;
      if (len > 0) fn(d[pos]);
      pos += static_cast<int64_t>(len);
    }
    return true;
  }
  // Annex B: the byte after each start code.
  for (int64_t i = 0; i + 3 < size; ++i) {
    if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
      fn(d[i + 3]);
      i += 2;
    }
  }
  return true;
}

bool FrameFilter::nal_has_picture(const uint8_t* d, int64_t size) const {
  const bool h264 = codec_id_ == AV_CODEC_ID_H264;
  bool picture = false;
  if (!for_each_nal(d, size, [&](uint8_t h) { picture = picture || (h264 ? h264_is_vcl(h) : hevc_is_vcl(h)); })) {
    return false;  // does not split: the decoder rejects the whole packet
  }
  return picture;
}

bool FrameFilter::is_clean_random_access(const uint8_t* d, int64_t size) const {
  if (codec_id_ == AV_CODEC_ID_HEVC) {
    bool clean = true;
    for_each_nal(d, size, [&](uint8_t h) {
      const int type = (h >> 1) & 0x3f;
      if (type < 32 && (type < 16 || type > 23)) clean = false;
    });
    return clean;
  }
  if (codec_id_ == AV_CODEC_ID_H264) {
    bool idr = false, non_idr = false;
    for_each_nal(d, size, [&](uint8_t h) {
      const int type = h & 0x1f;
      if (type == 5) idr = true;
      if (type >= 1 && type <= 4) non_idr = true;
    });
    return !(idr && non_idr);
  }
  return true;
}

bool FrameFilter::is_frame(const uint8_t* data, int64_t size) const {
  if (size <= 0) return false;
  switch (codec_id_) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
      return nal_has_picture(data, size);
    case AV_CODEC_ID_VP8:
      return size >= 3 && ((data[0] >> 4) & 1) == 1;
    case AV_CODEC_ID_VP9: {
      uint8_t marker = data[size - 1];
      if ((marker & 0xe0) == 0xc0) {
        int frames = (marker & 7) + 1;
        int mag = ((marker >> 3) & 3) + 1;
        int64_t index_size = 2 + static_cast<int64_t>(mag) * frames;
        if (size >= index_size && data[size - index_size] == marker) {
          const uint8_t* idx = data + size - index_size + 1;
          int64_t offset = 0;
          for (int f = 0; f < frames; ++f) {
            int64_t fsize = 0;
            for (int b = 0; b < mag; ++b) fsize |= static_cast<int64_t>(idx[f * mag + b]) << (8 * b);
            if (offset + fsize > size - index_size) break;
            if (vp9_frame_shown(data + offset, fsize)) return true;
            offset += fsize;
          }
          return false;
        }
      }
      return vp9_frame_shown(data, size);
    }
    default:
      return true;
  }
}

}  // namespace vidlake
