// vidlake._core: the one Python binding. Thin by design: argument conversion,
// buffer protocol, GIL release around all decoding and waiting, exception
// translation. The contract is written down in docs/DESIGN.md.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

extern "C" {
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
}

#include "byte_source.h"
#include "clip_prefetcher.h"
#include "errors.h"
#include "ffmpeg_log.h"
#include "ffmpeg_util.h"
#include "frame_converter.h"
#include "decode_limit.h"
#include "image_decoder.h"
#include "index_builder.h"
#include "keyframe_reader.h"
#include "output_buffers.h"
#include "packet_index.h"
#include "read_plan.h"
#include "video_decoder.h"

namespace py = pybind11;
using namespace vidlake;

namespace {

// A new uint8 array for a read's output; large ones come from OutputBuffers
// (Note [Recycled output buffers]). `resident`: its pages are already in memory.
py::array_t<uint8_t> new_output(const std::vector<py::ssize_t>& shape, bool* resident) {
  size_t bytes = 1;
  for (py::ssize_t d : shape) bytes *= static_cast<size_t>(d);
  *resident = false;
  if (bytes < OutputBuffers::kMinBytes) return py::array_t<uint8_t>(shape);
  auto holder = std::make_unique<OutputBlock>(OutputBuffers::instance().acquire(bytes));
  *resident = holder->resident;
  uint8_t* data = holder->data;
  py::capsule owner;
  try {
    owner = py::capsule(holder.get(), [](void* p) {
      std::unique_ptr<OutputBlock> block(static_cast<OutputBlock*>(p));
      OutputBuffers::instance().release(*block);
    });
  } catch (...) {
    OutputBuffers::instance().release(*holder);
    throw;
  }
  holder.release();  // the capsule owns it now
  return py::array_t<uint8_t>(shape, data, owner);
}

std::string describe(const py::handle& obj) {
  if (py::hasattr(obj, "name")) {
    py::object n = obj.attr("name");
    if (!n.is_none()) return py::str(n);
  }
  return "<" + std::string(py::str(py::type::handle_of(obj).attr("__name__"))) + " source>";
}

// A path, a bytes-like object, or a RangeSource (size + fetch(ranges)).
std::shared_ptr<ByteSource> make_source(const py::object& source, const std::string& name_hint) {
  py::module_ os = py::module_::import("os");
  if (py::isinstance<py::str>(source) || py::isinstance(source, os.attr("PathLike"))) {
    std::string path = py::str(os.attr("fspath")(source));
    return std::make_shared<FileSource>(path);
  }
  if (py::hasattr(source, "fetch") && py::hasattr(source, "size")) {
    int64_t size = source.attr("size").cast<int64_t>();
    std::string name = name_hint.empty() ? describe(source) : name_hint;
    // The Python object stays alive as long as the source; its fetch is called
    // with the GIL taken, once per read window (never per packet).
    auto holder = std::shared_ptr<py::object>(new py::object(source), [](py::object* p) {
      py::gil_scoped_acquire gil;
      delete p;
    });
    CallbackSource::FetchFn fetch = [holder](const std::vector<ByteRange>& ranges) {
      py::gil_scoped_acquire gil;
      py::list arg;
      for (const ByteRange& r : ranges) arg.append(py::make_tuple(r.start, r.end));
      py::object result = holder->attr("fetch")(arg);
      std::vector<std::string> out;
      for (py::handle item : result) {
        py::buffer_info info = py::reinterpret_borrow<py::buffer>(item).request();
        out.emplace_back(static_cast<const char*>(info.ptr), static_cast<size_t>(info.size * info.itemsize));
      }
      return out;
    };
    const bool local = py::bool_(py::getattr(source, "local", py::bool_(false)));
    return std::make_shared<CallbackSource>(std::move(fetch), size, name, local);
  }
  if (PyObject_CheckBuffer(source.ptr())) {
    py::buffer buf = py::reinterpret_borrow<py::buffer>(source);
    py::buffer_info info = buf.request();
    if (info.ndim > 1 && !(info.strides.back() == info.itemsize)) {
      throw ArgumentError("video bytes must be a contiguous buffer");
    }
    auto owner = std::shared_ptr<const void>(new py::object(source), [](const void* p) {
      py::gil_scoped_acquire gil;
      delete static_cast<const py::object*>(p);
    });
    std::string name = name_hint.empty() ? "<bytes>" : name_hint;
    return std::make_shared<MemorySource>(static_cast<const uint8_t*>(info.ptr), info.size * info.itemsize,
                                          std::move(owner), name);
  }
  throw py::type_error("source must be a path, a bytes-like object, or an object with .size and .fetch(ranges)");
}

py::dict metadata_of(const PacketIndex& idx) {
  const StreamInfo& s = idx.info;
  py::dict d;
  d["codec"] = avcodec_get_name(static_cast<AVCodecID>(s.codec_id));
  d["width"] = s.width;
  d["height"] = s.height;
  const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(s.pix_fmt));
  d["pix_fmt"] = pf ? py::str(pf) : py::str("unknown");
  d["num_frames"] = idx.num_frames();
  d["num_packets"] = idx.packets.size();
  d["fps"] = idx.fps();
  d["average_fps"] = s.avg_fps_den > 0 && s.avg_fps_num > 0 ? static_cast<double>(s.avg_fps_num) / s.avg_fps_den : 0.0;
  d["real_fps"] = s.r_fps_den > 0 && s.r_fps_num > 0 ? static_cast<double>(s.r_fps_num) / s.r_fps_den : 0.0;
  d["time_base"] = static_cast<double>(s.tb_num) / s.tb_den;
  d["time_base_num"] = s.tb_num;
  d["time_base_den"] = s.tb_den;
  const int64_t duration_ts = idx.duration_ts();
  d["duration_ts"] = duration_ts;
  d["duration"] = idx.seconds(duration_ts);
  d["start_time"] = idx.start_seconds();
  d["rotation"] = s.rotation;
  d["sample_aspect_ratio"] = py::make_tuple(s.sar_num, s.sar_den);
  d["color_range"] = av_color_range_name(static_cast<AVColorRange>(s.color_range)) ?: "unknown";
  d["color_space"] = av_color_space_name(static_cast<AVColorSpace>(s.color_space)) ?: "unknown";
  d["color_primaries"] = av_color_primaries_name(static_cast<AVColorPrimaries>(s.color_primaries)) ?: "unknown";
  d["color_transfer"] = av_color_transfer_name(static_cast<AVColorTransferCharacteristic>(s.color_trc)) ?: "unknown";
  d["profile"] = s.profile;
  d["level"] = s.level;
  d["bits_per_raw_sample"] = s.bits_per_raw_sample;
  d["has_b_frames"] = s.video_delay;
  d["container"] = s.container;
  d["stream_index"] = s.stream_index;
  d["num_streams"] = s.num_streams;
  d["size_bytes"] = s.source_size;
  d["contiguous_packets"] = idx.contiguous;
  d["damaged"] = idx.damaged;
  d["pts_from_container"] = idx.pts_from_container;
  d["keyframes"] = idx.keyframe_frames().size();
  d["x264_build"] = idx.inband.x264_build;  // Note [Replayed in-band state]; -1: none
  d["inband_parameter_sets"] = idx.inband.parameter_sets.size();
  return d;
}

using IndexPtr = std::shared_ptr<PacketIndex>;

// The stored fields of an index (Index._fields / Index._bytes_from_fields).
#define VIDLAKE_STREAM_FIELDS(X)                                                                                    \
  X(stream_index) X(codec_id) X(codec_tag) X(width) X(height) X(pix_fmt) X(profile) X(level)           \
  X(bits_per_coded_sample) X(bits_per_raw_sample) X(color_range) X(color_space) X(color_primaries) X(color_trc)     \
  X(chroma_location) X(field_order) X(video_delay) X(sar_num) X(sar_den) X(tb_num) X(tb_den) X(avg_fps_num)         \
  X(avg_fps_den) X(r_fps_num) X(r_fps_den) X(rotation) X(start_time) X(duration) X(source_size)        \
  X(num_streams)

py::dict index_fields(const PacketIndex& i) {
  py::dict d;
#define X(f) d[#f] = i.info.f;
  VIDLAKE_STREAM_FIELDS(X)
#undef X
  d["extradata"] = py::bytes(i.info.extradata);
  d["container"] = py::bytes(i.info.container);
  d["contiguous"] = i.contiguous;
  d["pts_from_container"] = i.pts_from_container;
  d["damaged"] = i.damaged;
  py::list packets;
  for (const PacketRecord& p : i.packets) packets.append(py::make_tuple(p.pts, p.dts, p.duration, p.offset, p.size, p.flags));
  d["packets"] = packets;
  d["frame_packet"] = i.frame_packet;
  d["frame_pts"] = i.frame_pts;
  return d;
}

PacketIndex index_from_fields(const py::dict& d) {
  PacketIndex i;
#define X(f) if (d.contains(#f)) i.info.f = d[#f].cast<decltype(i.info.f)>();
  VIDLAKE_STREAM_FIELDS(X)
#undef X
  if (d.contains("extradata")) i.info.extradata = d["extradata"].cast<std::string>();
  if (d.contains("container")) i.info.container = d["container"].cast<std::string>();
  i.contiguous = d["contiguous"].cast<bool>();
  i.pts_from_container = d["pts_from_container"].cast<bool>();
  i.damaged = d["damaged"].cast<bool>();
  for (py::handle h : d["packets"]) {
    auto t = h.cast<py::tuple>();
    PacketRecord p;
    p.pts = t[0].cast<int64_t>();
    p.dts = t[1].cast<int64_t>();
    p.duration = t[2].cast<int64_t>();
    p.offset = t[3].cast<int64_t>();
    p.size = t[4].cast<int32_t>();
    p.flags = t[5].cast<uint32_t>();
    i.packets.push_back(p);
  }
  i.frame_packet = d["frame_packet"].cast<std::vector<int32_t>>();
  i.frame_pts = d["frame_pts"].cast<std::vector<int64_t>>();
  return i;
}

std::vector<int32_t> checked_frames(const PacketIndex& idx, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& a,
                                    const std::string& name) {
  const int64_t n = idx.num_frames();
  auto r = a.unchecked<1>();
  std::vector<int32_t> out(static_cast<size_t>(r.shape(0)));
  for (py::ssize_t i = 0; i < r.shape(0); ++i) {
    int64_t f = r(i);
    if (f < 0) f += n;
    if (f < 0 || f >= n) {
      throw FrameIndexError("frame " + std::to_string(r(i)) + " is out of range for " + name + " (" +
                            std::to_string(n) + " frames)");
    }
    out[static_cast<size_t>(i)] = static_cast<int32_t>(f);
  }
  return out;
}

class Decoder {
 public:
  Decoder(const py::object& source, IndexPtr index, int threads, bool skip_nonref, const std::string& name,
          int64_t memory_budget)
      : index_(std::move(index)) {
    std::shared_ptr<ByteSource> src = make_source(source, name);
    DecoderOptions opt;
    opt.threads = threads;
    opt.skip_nonref = skip_nonref;
    opt.memory_budget = memory_budget < 0 ? -1 : memory_budget;
    py::gil_scoped_release nogil;
    decoder_ = std::make_unique<VideoDecoder>(src, index_, opt);
  }

  OutputLayout layout(int height, int width, bool gray, bool rotate, bool stream_colors) const {
    OutputLayout l;
    l.gray = gray;
    l.stream_colors = stream_colors;
    l.explicit_size = height > 0 && width > 0;
    l.quarter_turns = rotate ? quarter_turns_for_rotation(index_->info.rotation) : 0;
    const bool sideways = l.quarter_turns % 2 == 1;
    l.height = height > 0 ? height : (sideways ? index_->info.width : index_->info.height);
    l.width = width > 0 ? width : (sideways ? index_->info.height : index_->info.width);
    if (l.height <= 0 || l.width <= 0) throw ArgumentError(decoder_->name() + ": unknown frame size");
    return l;
  }

  py::array get_frames(const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& indices,
                       py::object out, int height, int width, bool gray, bool rotate, bool stream_colors) {
    if (indices.ndim() != 1) throw ArgumentError("indices must be one-dimensional");
    if ((height > 0) != (width > 0)) throw ArgumentError("size needs both height and width");
    std::vector<int32_t> frames = checked_frames(*index_, indices, decoder_->name());
    OutputLayout l = layout(height, width, gray, rotate, stream_colors);
    const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(frames.size()), l.height, l.width, l.channels()};
    py::array_t<uint8_t> result;
    bool resident = false;
    if (out.is_none()) {
      result = new_output(shape, &resident);
    } else {
      if (!py::isinstance<py::array_t<uint8_t>>(out) || py::array(out).dtype().kind() != 'u' ||
          py::array(out).itemsize() != 1) {
        throw ArgumentError("out must be a numpy uint8 array");
      }
      result = py::reinterpret_borrow<py::array_t<uint8_t>>(out);
      if (!(result.flags() & py::array::c_style)) throw ArgumentError("out must be C-contiguous");
      if (!result.writeable()) throw ArgumentError("out must be writeable");
      std::vector<py::ssize_t> got(result.shape(), result.shape() + result.ndim());
      if (got != shape) {
        std::string want = "(";
        for (size_t i = 0; i < shape.size(); ++i) want += std::to_string(shape[i]) + (i + 1 < shape.size() ? ", " : ")");
        std::string have = "(";
        for (size_t i = 0; i < got.size(); ++i) have += std::to_string(got[i]) + (i + 1 < got.size() ? ", " : "");
        throw ArgumentError("out has shape " + have + ") but this read needs " + want);
      }
    }
    uint8_t* data = result.mutable_data();
    {
      py::gil_scoped_release nogil;
      decoder_->get_frames(frames, l, data, resident);
    }
    return py::array(std::move(result));  // GCC 14: -Wredundant-move on std::move(result)
  }

  py::dict stats() const {
    py::dict d;
    for (const auto& kv : decoder_->stats().as_map()) d[py::str(kv.first)] = kv.second;
    return d;
  }
  void reset_stats() { decoder_->reset_stats(); }
  void trim(int keep) {
    py::gil_scoped_release nogil;
    decoder_->trim(keep);
  }
  IndexPtr index() const { return index_; }
  int64_t memory_budget() const { return decoder_->memory_budget(); }
  VideoDecoder& core() { return *decoder_; }  // for the clip prefetch pool

 private:
  IndexPtr index_;
  std::unique_ptr<VideoDecoder> decoder_;
};

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

}  // namespace

void register_encoder(py::module_& m);  // the encoder block at the end of this file

PYBIND11_MODULE(_core, m) {
  m.doc() = "vidlake's C++ core: packet index, read planner, decoder (see docs/DESIGN.md)";
  vidlake::install_log_buffer(AV_LOG_ERROR);  // Note [FFmpeg log lines]
  m.def(
      "drain_ffmpeg_log",
      []() {
        auto [lines, dropped] = vidlake::drain_log();
        py::list out;
        for (auto& [level, text] : lines) out.append(py::make_tuple(level, py::str(text)));
        return py::make_tuple(out, dropped);
      },
      "FFmpeg's log lines since the last call as [(av_log level, text)], and how many were dropped");
  m.def(
      "set_ffmpeg_log_level", [](int level) { av_log_set_level(level); }, py::arg("level"),
      "FFmpeg's log level (AV_LOG_*: 8 fatal, 16 error, 24 warning, 32 info, 48 debug)");

  py::module_ errors = py::module_::import("vidlake.errors");
  static py::object decode_error = errors.attr("VideoDecodeError");
  static py::object unsupported_error = errors.attr("UnsupportedFormatError");
  static py::object index_format_error = errors.attr("IndexFormatError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UnsupportedError& e) {
      PyErr_SetString(unsupported_error.ptr(), e.what());
    } catch (const DecodeError& e) {
      PyErr_SetString(decode_error.ptr(), e.what());
    } catch (const IndexFormatError& e) {
      PyErr_SetString(index_format_error.ptr(), e.what());
    } catch (const FrameIndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const ArgumentError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.attr("INDEX_FORMAT_VERSION") = py::make_tuple(kIndexFormatMajor, kIndexFormatMinor);
  m.attr("FFMPEG_VERSIONS") = py::dict(py::arg("libavcodec") = av_version_info(),
                                       py::arg("libavcodec_int") = avcodec_version(),
                                       py::arg("libavformat_int") = avformat_version(),
                                       py::arg("libswscale_int") = swscale_version());

  py::class_<PacketIndex, IndexPtr>(m, "Index", "A video stream's packet index (see docs/DESIGN.md)")
      .def_static(
          "build",
          [](const py::object& source, int stream, const std::string& name, const std::string& mode) {
            IndexMode m;
            if (mode == "auto") {
              m = IndexMode::kAuto;
            } else if (mode == "demux") {
              m = IndexMode::kDemux;
            } else if (mode == "tables") {
              m = IndexMode::kTables;
            } else if (mode == "checked") {
              m = IndexMode::kChecked;
            } else {
              throw ArgumentError("index mode must be one of 'auto', 'demux', 'tables', 'checked', not '" + mode +
                                  "'");
            }
            std::shared_ptr<ByteSource> src = make_source(source, name);
            py::gil_scoped_release nogil;
            return std::make_shared<PacketIndex>(build_index(*src, stream, m));
          },
          py::arg("source"), py::arg("stream") = -1, py::arg("name") = "", py::arg("mode") = "auto")
      .def_static(
          "from_bytes",
          [](const py::bytes& b, const std::string& name) {
            // Untrusted bytes (cpp/index_validate.h): errors name the sample they belong to.
            std::string data = b;
            try {
              return std::make_shared<PacketIndex>(PacketIndex::deserialize(data));
            } catch (const IndexFormatError& e) {
              if (name.empty()) throw;
              throw IndexFormatError(name + ": " + e.what());
            }
          },
          py::arg("data"), py::arg("name") = "")
      .def("to_bytes", [](const PacketIndex& i) { return py::bytes(i.serialize()); })
      // For tests and fuzz seeds only: every stored field as plain data, and
      // index bytes from such data (serialised as is, not validated).
      .def("_fields", &index_fields)
      .def_static("_bytes_from_fields", [](const py::dict& d) { return py::bytes(index_from_fields(d).serialize()); },
                  py::arg("fields"))
      .def_property_readonly("built_from", [](const PacketIndex& i) { return i.built_from; },
                             "'tables' (MP4/MOV sample tables), 'demux' (every packet) or 'stored'")
      .def_property_readonly("build_bytes", [](const PacketIndex& i) { return i.build_bytes; },
                             "Bytes the build read from its source (-1 for a stored index)")
      .def_property_readonly("build_packets", [](const PacketIndex& i) { return i.build_packets; },
                             "Packets the build's demux passes read (-1 for a stored index)")
      .def_property_readonly("build_payload_bytes", [](const PacketIndex& i) { return i.build_payload_bytes; },
                             "Payload bytes the tables path handed the demuxer instead of the file's "
                             "(0 for the full demux, -1 for a stored index)")
      .def_property_readonly("num_frames", &PacketIndex::num_frames)
      .def("__len__", &PacketIndex::num_frames)
      .def_property_readonly("stream_index", [](const PacketIndex& i) { return i.info.stream_index; })
      .def_property_readonly("source_size", [](const PacketIndex& i) { return i.info.source_size; })
      .def_property_readonly("contiguous", [](const PacketIndex& i) { return i.contiguous; })
      .def_property_readonly("pts", [](const PacketIndex& i) { return to_numpy(i.frame_pts); })
      .def_property_readonly("timestamps",
                             [](const PacketIndex& i) {
                               std::vector<double> t;
                               t.reserve(i.frame_pts.size());
                               for (int64_t p : i.frame_pts) t.push_back(i.seconds(p));
                               return to_numpy(t);
                             })
      .def_property_readonly("keyframe_indices",
                             [](const PacketIndex& i) {
                               std::vector<int64_t> k;
                               for (int32_t f : i.keyframe_frames()) k.push_back(f);
                               return to_numpy(k);
                             })
      .def_property_readonly("metadata", &metadata_of)
      .def(
          "byte_ranges",
          [](const PacketIndex& i, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& frames) {
            std::vector<int32_t> f = checked_frames(i, frames, "this video");
            std::sort(f.begin(), f.end());
            f.erase(std::unique(f.begin(), f.end()), f.end());
            std::vector<ByteRange> all;
            if (i.contiguous) {
              for (const Span& s : plan_spans(i, f)) {
                auto r = packet_byte_ranges(i, s.start, s.end, 0);
                all.insert(all.end(), r.begin(), r.end());
              }
              all = merge_ranges(std::move(all), 0);
            } else {
              all.push_back(ByteRange{0, i.info.source_size});
            }
            std::vector<std::pair<int64_t, int64_t>> out;
            for (const ByteRange& r : all) out.emplace_back(r.start, r.end);
            return out;
          },
          py::arg("frames"))
      .def("__repr__", [](const PacketIndex& i) {
        return "<vidlake._core.Index " + std::to_string(i.num_frames()) + " frames, " +
               std::to_string(i.packets.size()) + " packets, " +
               avcodec_get_name(static_cast<AVCodecID>(i.info.codec_id)) + " " + std::to_string(i.info.width) + "x" +
               std::to_string(i.info.height) + ">";
      });

  py::class_<Decoder>(m, "Decoder", "Decodes frames of one indexed video; safe to share between threads")
      .def(py::init<const py::object&, IndexPtr, int, bool, const std::string&, int64_t>(), py::arg("source"),
           py::arg("index"), py::arg("threads") = 0, py::arg("skip_nonref") = true, py::arg("name") = "",
           py::arg("memory_budget") = -1)
      .def("get_frames", &Decoder::get_frames, py::arg("indices"), py::arg("out") = py::none(),
           py::arg("height") = 0, py::arg("width") = 0, py::arg("gray") = false, py::arg("rotate") = false,
           py::arg("stream_colors") = false)
      .def_property_readonly("stats", &Decoder::stats)
      .def("reset_stats", &Decoder::reset_stats)
      .def("trim", &Decoder::trim, py::arg("keep") = 0,
           "Close idle decoder states beyond the `keep` most recently used (frees their memory)")
      .def_property_readonly("index", &Decoder::index)
      .def_property_readonly("memory_budget", &Decoder::memory_budget,
                             "Bytes of decoder memory its parked states keep to (Note [Parked decoders])");
  m.def("set_decoder_memory_budget", &set_default_decoder_memory_budget, py::arg("nbytes"),
        "Process-wide budget for each reader's parked decoder states (-1: the built-in one)");
  m.def("decoder_memory_budget", &default_decoder_memory_budget,
        "The process-wide budget set by set_decoder_memory_budget (-1: the built-in one)");
  m.def("set_total_decoder_memory_budget", &set_total_decoder_memory_budget, py::arg("nbytes"),
        "Budget for the parked decoder states of every reader together (-1: none; Note [The process's parked "
        "decoders])");
  m.def("total_decoder_memory_budget", &total_decoder_memory_budget,
        "The budget set by set_total_decoder_memory_budget (-1: none)");
  m.def("parked_decoder_totals", [] {
    const ParkedTotals t = parked_decoder_totals();
    py::dict d;
    d["decoders"] = t.decoders;
    d["parked_decoders"] = t.parked_decoders;
    d["parked_bytes"] = t.parked_bytes;
    d["shed_decoders"] = t.shed_decoders;
    return d;
  }, "Decoders alive, their parked states and bytes, and states closed for the total budget");

  m.def(
      "decode_image",
      [](const py::object& source, py::object out, int channels, const std::string& name,
         const std::string& decoder) {
        std::shared_ptr<ByteSource> src = make_source(source, name);
        if (channels != 0 && channels != 1 && channels != 3 && channels != 4) {
          throw ArgumentError("channels must be 0 (the image's own), 1, 3 or 4");
        }
        if (decoder != "libjpeg-turbo" && decoder != "ffmpeg") {
          throw ArgumentError("decoder must be 'libjpeg-turbo' or 'ffmpeg', got '" + decoder + "'");
        }
        const ImageDecoder which = decoder == "ffmpeg" ? ImageDecoder::ffmpeg : ImageDecoder::libjpeg_turbo;
        std::unique_ptr<DecodedPicture> pic;
        {
          py::gil_scoped_release nogil;
          pic = std::make_unique<DecodedPicture>(*src, which);
        }
        const int c = channels != 0 ? channels : pic->natural_channels();
        const std::vector<py::ssize_t> shape{pic->height(), pic->width(), c};
        py::array_t<uint8_t> result;
        if (out.is_none()) {
          result = py::array_t<uint8_t>(shape);
        } else {
          if (!py::isinstance<py::array_t<uint8_t>>(out)) throw ArgumentError("out must be a numpy uint8 array");
          result = py::reinterpret_borrow<py::array_t<uint8_t>>(out);
          if (!(result.flags() & py::array::c_style) || !result.writeable() ||
              std::vector<py::ssize_t>(result.shape(), result.shape() + result.ndim()) != shape) {
            throw ArgumentError(src->name() + ": out must be a writeable C-contiguous uint8 array of shape (" +
                                std::to_string(pic->height()) + ", " + std::to_string(pic->width()) + ", " +
                                std::to_string(c) + ")");
          }
        }
        uint8_t* data = result.mutable_data();
        {
          py::gil_scoped_release nogil;
          pic->convert(c, data);
        }
        return result;
      },
      py::arg("source"), py::arg("out") = py::none(), py::arg("channels") = 0, py::arg("name") = "",
      py::arg("decoder") = "libjpeg-turbo",
      "Decode a still image into (H, W, C) uint8: C 1 gray, 3 RGB, 4 RGBA (0: the image's own). "
      "decoder 'libjpeg-turbo' (JPEG as Pillow decodes it, other formats by libavcodec) or 'ffmpeg'");
  m.attr("JPEG_LIBRARY") = jpeg_library_version();
  m.def(
      "configure_output_cache",
      [](int64_t max_bytes, double keep_seconds) { OutputBuffers::instance().configure(max_bytes, keep_seconds); },
      py::arg("max_bytes") = -1, py::arg("keep_seconds") = -1.0,
      "Set the recycled output cache's size and keep time (negative: unchanged; 0 turns it off)");
  m.def(
      "output_cache_info",
      []() {
        const OutputCacheInfo i = OutputBuffers::instance().info();
        py::dict d;
        d["max_bytes"] = i.max_bytes;
        d["keep_seconds"] = i.keep_seconds;
        d["cached_bytes"] = i.cached_bytes;
        d["cached_blocks"] = i.cached_blocks;
        d["hits"] = i.hits;
        d["misses"] = i.misses;
        d["returned"] = i.returned;
        d["min_bytes"] = static_cast<int64_t>(OutputBuffers::kMinBytes);
        return d;
      },
      "Counters of the recycled output cache (Note [Recycled output buffers])");
  m.def(
      "clear_output_cache", []() { OutputBuffers::instance().clear(); },
      "Give every cached output block back to the system now");
  m.def(
      "decode_limit",
      [](const py::object& source, const std::vector<int64_t>& frames, int threads) {
        std::shared_ptr<ByteSource> src = make_source(source, "");
        py::gil_scoped_release nogil;
        PacketIndex idx = build_index(*src, -1);
        std::vector<int32_t> f;
        for (int64_t x : frames) f.push_back(static_cast<int32_t>(x < 0 ? x + idx.num_frames() : x));
        return decode_limit(*src, idx, f, threads);
      },
      py::arg("source"), py::arg("frames"), py::arg("threads") = 1,
      "Seconds libavcodec alone needs to decode the packets a read of `frames` needs (benchmark limit)");

  // ---- Clip prefetch pool (issue 14; Note [Clip prefetch pool] in cpp/clip_prefetcher.cpp)
  // The Python decoder and output array of each ticket stay referenced here until
  // it is waited for, so a job never outlives what it writes into.
  struct Prefetcher {
    std::unique_ptr<ClipPrefetcher> core;
    std::unordered_map<uint64_t, py::object> keep;
    Prefetcher(int threads, int capacity) : core(std::make_unique<ClipPrefetcher>(threads, capacity)) {}
    ~Prefetcher() {
      py::gil_scoped_release nogil;  // running jobs finish first (the GIL-free decode)
      core.reset();
    }
  };
  py::class_<Prefetcher>(m, "ClipPrefetcher", "Threads that decode clips into given arrays ahead of the caller")
      .def(py::init<int, int>(), py::arg("threads"), py::arg("capacity"))
      .def(
          "submit",
          [](Prefetcher& self, py::object decoder, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& indices,
             py::array out, int height, int width, bool stream_colors) {
            Decoder& d = decoder.cast<Decoder&>();
            if (indices.ndim() != 1) throw ArgumentError("indices must be one-dimensional");
            if ((height > 0) != (width > 0)) throw ArgumentError("size needs both height and width");
            std::vector<int32_t> frames = checked_frames(d.core().index(), indices, d.core().name());
            OutputLayout l = d.layout(height, width, false, false, stream_colors);
            const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(frames.size()), l.height, l.width, l.channels()};
            if (!py::isinstance<py::array_t<uint8_t>>(out) || out.dtype().kind() != 'u' || out.itemsize() != 1 ||
                !(out.flags() & py::array::c_style) || !out.writeable() ||
                std::vector<py::ssize_t>(out.shape(), out.shape() + out.ndim()) != shape) {
              throw ArgumentError(d.core().name() + ": out must be a writeable C-contiguous uint8 array of shape (" +
                                  std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
                                  std::to_string(shape[2]) + ", " + std::to_string(shape[3]) + ")");
            }
            VideoDecoder* core = &d.core();
            uint8_t* data = static_cast<uint8_t*>(out.mutable_data());
            ClipPrefetcher::Job job = [core, frames = std::move(frames), l, data] { core->get_frames(frames, l, data); };
            uint64_t ticket;
            {
              py::gil_scoped_release nogil;  // may wait for room in the queue
              ticket = self.core->submit(std::move(job));
            }
            self.keep[ticket] = py::make_tuple(decoder, out);
            return ticket;
          },
          py::arg("decoder"), py::arg("indices"), py::arg("out"), py::arg("height") = 0, py::arg("width") = 0,
          py::arg("stream_colors") = true, "Queue a decode of `indices` into `out`; returns a ticket")
      .def(
          "wait",
          [](Prefetcher& self, uint64_t ticket) {
            auto it = self.keep.find(ticket);
            if (it == self.keep.end()) throw ArgumentError("unknown prefetch ticket " + std::to_string(ticket));
            py::object held = std::move(it->second);
            self.keep.erase(it);
            py::gil_scoped_release nogil;
            self.core->wait(ticket);
          },
          py::arg("ticket"), "Block until the ticket's clip is decoded (re-raises its error)")
      .def_property_readonly("stats", [](Prefetcher& self) {
        PrefetchStats st = self.core->stats();
        py::dict d;
        d["threads"] = st.threads;
        d["capacity"] = st.capacity;
        d["submitted"] = st.submitted;
        d["completed"] = st.completed;
        d["pending"] = st.pending;
        d["peak_pending"] = st.peak_pending;
        d["uncollected"] = st.uncollected;
        return d;
      });
  // vidlake.curate: keyframes-only candidates (Note [Keyframes alone], cpp/keyframe_reader.h).
  m.def(
      "decode_keyframes",
      [](const py::object& source, IndexPtr index, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& indices,
         int height, int width, bool gray, bool rotate, bool stream_colors, int threads, const std::string& name) {
        if (indices.ndim() != 1) throw ArgumentError("indices must be one-dimensional");
        if ((height > 0) != (width > 0)) throw ArgumentError("size needs both height and width");
        std::shared_ptr<ByteSource> src = make_source(source, name);
        std::vector<int32_t> frames = checked_frames(*index, indices, src->name());
        OutputLayout l;
        l.gray = gray;
        l.stream_colors = stream_colors;
        l.quarter_turns = rotate ? quarter_turns_for_rotation(index->info.rotation) : 0;
        const bool sideways = l.quarter_turns % 2 == 1;
        l.height = height > 0 ? height : (sideways ? index->info.width : index->info.height);
        l.width = width > 0 ? width : (sideways ? index->info.height : index->info.width);
        if (l.height <= 0 || l.width <= 0) throw ArgumentError(src->name() + ": unknown frame size");
        const auto n = static_cast<py::ssize_t>(frames.size());
        py::array_t<uint8_t> result(std::vector<py::ssize_t>{n, l.height, l.width, l.channels()});
        py::array_t<uint8_t> produced(n);
        uint8_t* data = result.mutable_data();
        uint8_t* got = produced.mutable_data();
        KeyframeStats st;
        {
          py::gil_scoped_release nogil;
          st = decode_keyframes(*src, *index, frames, l, data, got, threads);
        }
        py::dict stats;
        stats["packets_decoded"] = st.packets_decoded;
        stats["frames_decoded"] = st.frames_decoded;
        stats["frames_converted"] = st.frames_converted;
        return py::make_tuple(result, produced.attr("astype")("bool"), stats);
      },
      py::arg("source"), py::arg("index"), py::arg("indices"), py::arg("height") = 0, py::arg("width") = 0,
      py::arg("gray") = false, py::arg("rotate") = false, py::arg("stream_colors") = true, py::arg("threads") = 1,
      py::arg("name") = "",
      "Decode keyframes, each from its own packet alone: (frames, produced mask, stats)");
  register_encoder(m);
}

// ---- The encoder (issue 17): cpp/video_encoder.*, used by python/vidlake/video/encode.py.
#include <mutex>

#include "video_encoder.h"

namespace {

EncoderOptions encoder_options(const py::dict& d) {
  EncoderOptions o;
  auto get_str = [&](const char* k, std::string& v) { if (d.contains(k)) v = d[k].cast<std::string>(); };
  auto get_int = [&](const char* k, int& v) { if (d.contains(k)) v = d[k].cast<int>(); };
  get_str("encoder", o.encoder);
  get_str("muxer", o.muxer);
  get_str("pix_fmt", o.pix_fmt);
  get_int("width", o.width);
  get_int("height", o.height);
  get_int("tb_num", o.tb_num);
  get_int("tb_den", o.tb_den);
  get_int("fps_num", o.fps_num);
  get_int("fps_den", o.fps_den);
  get_int("gop", o.gop);
  get_int("max_b_frames", o.max_b_frames);
  get_int("threads", o.threads);
  get_int("color_space", o.color_space);
  get_int("color_range", o.color_range);
  get_int("color_primaries", o.color_primaries);
  get_int("color_trc", o.color_trc);
  get_int("sws_flags", o.sws_flags);
  if (d.contains("qscale")) o.qscale = d["qscale"].cast<double>();
  if (d.contains("bit_rate")) o.bit_rate = d["bit_rate"].cast<int64_t>();
  if (d.contains("codec_options")) o.codec_options = d["codec_options"].cast<std::map<std::string, std::string>>();
  if (d.contains("muxer_options")) o.muxer_options = d["muxer_options"].cast<std::map<std::string, std::string>>();
  return o;
}

class PyEncoder {
 public:
  PyEncoder(const py::dict& options, const std::string& path, const std::string& name) {
    EncoderOptions o = encoder_options(options);
    py::gil_scoped_release nogil;
    enc_ = std::make_unique<VideoEncoder>(o, path, name);
  }
  void write(const py::array_t<uint8_t, py::array::c_style>& frames,
             const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& pts,
             const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& dur) {
    if (frames.ndim() != 4 || frames.shape(3) != 3) throw ArgumentError("frames must be (N, H, W, 3) uint8");
    if (pts.ndim() != 1 || dur.ndim() != 1 || pts.shape(0) != frames.shape(0) || dur.shape(0) != frames.shape(0)) {
      throw ArgumentError("pts and durations need one value per frame");
    }
    const uint8_t* data = frames.data();
    const int64_t* p = pts.data();
    const int64_t* du = dur.data();
    const int64_t n = frames.shape(0);
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);  // one writer at a time (VideoEncoder is not thread-safe)
    enc_->write(data, n, p, du);
  }
  void finish() {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(mu_);
    enc_->finish();
  }
  py::bytes take_bytes() {
    std::string b;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu_);
      b = enc_->take_bytes();
    }
    return py::bytes(b);
  }
  py::dict stats() const {
    const EncoderStats& s = enc_->stats();
    py::dict d;
    d["frames_in"] = s.frames_in;
    d["packets_out"] = s.packets_out;
    d["keyframes"] = s.keyframes;
    d["bytes_out"] = s.bytes_out;
    return d;
  }
  std::map<std::string, std::string> facts() const { return enc_->facts(); }
  bool finished() const { return enc_->finished(); }

 private:
  std::mutex mu_;
  std::unique_ptr<VideoEncoder> enc_;
};

}  // namespace

void register_encoder(py::module_& m) {
  static py::object encode_error = py::module_::import("vidlake.errors").attr("VideoEncodeError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const EncodeError& e) {
      PyErr_SetString(encode_error.ptr(), e.what());
    }
  });
  py::class_<PyEncoder>(m, "VideoEncoder", "RGB24 frames -> libavcodec -> a container in a file or in memory")
      .def(py::init<const py::dict&, const std::string&, const std::string&>(), py::arg("options"),
           py::arg("path") = "", py::arg("name") = "")
      .def("write", &PyEncoder::write, py::arg("frames"), py::arg("pts"), py::arg("durations"),
           "Encode (N, H, W, 3) uint8 RGB frames with their pts and durations (time base units); GIL released")
      .def("finish", &PyEncoder::finish, "Flush the encoder and write the trailer (idempotent)")
      .def("take_bytes", &PyEncoder::take_bytes, "The container's bytes (memory output, after finish)")
      .def_property_readonly("stats", &PyEncoder::stats)
      .def_property_readonly("facts", &PyEncoder::facts)
      .def_property_readonly("finished", &PyEncoder::finished);
  m.def(
      "has_encoder",
      [](const std::string& name) { return avcodec_find_encoder_by_name(name.c_str()) != nullptr; },
      py::arg("name"), "Whether the linked FFmpeg has the encoder `name` (e.g. libx264)");
}
