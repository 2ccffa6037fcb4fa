// Still images (JPEG, PNG, WebP, ...) decoded into a caller's buffer. JPEG goes through
// libjpeg-turbo by default, exactly as Pillow decodes it (jpeg_decoder.h); everything else,
// and JPEG with ImageDecoder::ffmpeg, through libavcodec and the same converter as video frames.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "byte_source.h"
#include "ffmpeg_util.h"
#include "jpeg_decoder.h"

namespace vidlake {

enum class ImageDecoder {
  libjpeg_turbo,  // JPEG: libjpeg-turbo (Pillow's pixels); other formats: libavcodec
  ffmpeg,         // every format: libavcodec + libswscale
};

class DecodedPicture {
 public:
  // Decodes (JPEG: reads the header of) the first picture of the source. Throws DecodeError
  // naming the source for anything that is not a decodable image.
  explicit DecodedPicture(ByteSource& source, ImageDecoder decoder = ImageDecoder::libjpeg_turbo);
  int width() const { return jpeg_ ? jpeg_->width() : frame_->width; }
  int height() const { return jpeg_ ? jpeg_->height() : frame_->height; }
  // 1 gray, 3 RGB, 4 RGBA (formats with an alpha channel or a palette).
  int natural_channels() const;
  // Writes height * width * channels bytes (channels 1, 3 or 4), rows packed. Call once.
  void convert(int channels, uint8_t* out);
  // "libjpeg-turbo" or "ffmpeg": which library decodes this picture.
  const char* decoded_by() const { return jpeg_ ? "libjpeg-turbo" : "ffmpeg"; }

 private:
  void decode_with_ffmpeg(ByteSource& source);
  std::unique_ptr<JpegPicture> jpeg_;
  FramePtr frame_ = make_frame();
};

}  // namespace vidlake
