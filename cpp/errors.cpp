#include "errors.h"

#include "ffmpeg_util.h"

namespace vidlake {

void throw_ffmpeg_error(int err, const std::string& source, const std::string& what) {
  throw DecodeError(source + ": " + what + ": " + av_error_text(err));
}

}  // namespace vidlake
