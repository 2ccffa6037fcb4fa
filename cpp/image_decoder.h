// Still images (JPEG, PNG, WebP, ...) decoded by libavcodec and converted into a
// caller's buffer with the same converter as video frames.
#pragma once

#include <cstdint>
#include <string>

#include "byte_source.h"
#include "ffmpeg_util.h"

namespace vidlake {

class DecodedPicture {
 public:
  // Decodes the first picture of the source. Throws DecodeError naming the
  // source for anything that is not a decodable image.
  explicit DecodedPicture(ByteSource& source);
  int width() const { return frame_->width; }
  int height() const { return frame_->height; }
  // 1 gray, 3 RGB, 4 RGBA (formats with an alpha channel or a palette).
  int natural_channels() const;
  // Writes height * width * channels bytes (channels 1, 3 or 4), rows packed.
  void convert(int channels, uint8_t* out) const;

 private:
  FramePtr frame_ = make_frame();
};

}  // namespace vidlake
