// Exceptions of the core. The binding maps them onto vidlake.errors.
#pragma once

#include <stdexcept>
#include <string>

namespace vidlake {

// Cannot open, demux or decode a video; message names the source and FFmpeg's reason.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A valid file that is not something vidlake reads (e.g. no video stream).
class UnsupportedError : public DecodeError {
 public:
  using DecodeError::DecodeError;
};

// A serialised index is damaged or from a newer format version.
class IndexFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A frame number outside [0, num_frames).
class FrameIndexError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

// Bad arguments from the caller (shapes, sizes).
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Throws DecodeError "<source>: <what>: <FFmpeg's text for err>".
[[noreturn]] void throw_ffmpeg_error(int err, const std::string& source, const std::string& what);

}  // namespace vidlake
