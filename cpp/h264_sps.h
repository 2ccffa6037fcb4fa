// The pixel format libavcodec's H.264 decoder will choose, read from the
// sequence parameter set in the stream's avcC extradata, so indexing an mp4 or
// Matroska H.264 file needs no decoder (see Note [H.264 pixel format]).
#pragma once

#include <string>

namespace vidlake {

// AVPixelFormat, or -1 when the extradata is not avcC, the SPS cannot be read,
// or it describes a case left to the decoder (monochrome, 4:4:4 RGB, unusual
// bit depths). container_range / container_space are the AVColorRange /
// AVColorSpace the container states (used when the SPS states none).
int h264_pixel_format(const std::string& extradata, int container_range, int container_space);

}  // namespace vidlake
