// JPEG still images decoded by libjpeg-turbo exactly as Pillow decodes them (Pillow's wheels
// bundle libjpeg-turbo; its JpegDecode.c runs the same libjpeg calls as below), so a dataset's
// JPEG pixels equal np.asarray(Image.open(f).convert("RGB")) bit for bit. libavcodec's MJPEG
// decoder uses another IDCT and chroma upsampling (up to ~40 levels apart); it stays available
// as the "ffmpeg" image decoder (image_decoder.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vidlake {

// True when `data` starts like a JPEG file (SOI marker followed by another marker).
bool looks_like_jpeg(const uint8_t* data, int64_t size);

// The libjpeg-turbo version this build decodes JPEGs with, e.g. "libjpeg-turbo 2.1.5".
std::string jpeg_library_version();

class JpegPicture {
 public:
  // Reads the header. Returns nullptr (no exception) when libjpeg cannot take the file at all
  // (not baseline/progressive/arithmetic 8-bit: lossless or 12-bit JPEG), so the caller may use
  // libavcodec instead; throws DecodeError naming `name` for other header errors.
  static std::unique_ptr<JpegPicture> open(std::vector<uint8_t> data, const std::string& name);
  ~JpegPicture();
  JpegPicture(const JpegPicture&) = delete;
  JpegPicture& operator=(const JpegPicture&) = delete;

  int width() const { return width_; }
  int height() const { return height_; }
  // 1 for grayscale JPEGs, else 3 (CMYK/YCCK ones convert to RGB as Pillow's convert("RGB")).
  int natural_channels() const { return gray_ ? 1 : 3; }
  // Decodes into height * width * channels bytes (channels 1, 3 or 4), rows packed; the
  // conversions between channel counts are Pillow's (L -> RGB repeats, RGB -> L is ITU-R
  // 601-2 luma, alpha 255). Throws DecodeError on corrupt or truncated data. Call once.
  void decode(int channels, uint8_t* out);

  struct State;  // libjpeg's structs (jpeg_decoder.cpp)

 private:
  JpegPicture() = default;
  std::unique_ptr<State> state_;
  std::vector<uint8_t> data_;
  std::string name_;
  int width_ = 0;
  int height_ = 0;
  bool gray_ = false;
  bool cmyk_ = false;
};

}  // namespace vidlake
