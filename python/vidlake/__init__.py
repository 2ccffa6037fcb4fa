"""vidlake: frame-exact video datasets for deep learning.

    >>> import vidlake
    >>> r = vidlake.VideoReader("clip.mp4")
    >>> r[10].shape            # (H, W, 3) uint8 RGB
    >>> ds = vidlake.empty("./video_ds")
    >>> ds.create_tensor("videos", htype="video", sample_compression="mp4")
    >>> ds.videos.append(vidlake.read("clip.mp4"))
"""
from __future__ import annotations

from .api import dataset, empty, exists, load, read  # noqa: F401
from .curate import export_frames, scan, select  # noqa: F401
from .dataset import (
    Dataset,  # noqa: F401
    Tensor,  # noqa: F401
)
from .errors import (  # noqa: F401
    ConcurrentWriteError,
    CredentialsError,
    DatasetError,
    FrameTimestampError,
    HtypeError,
    IndexFormatError,
    JobRunningError,
    LinkRefusedError,
    ReadOnlyError,
    SampleAppendError,
    StorageError,
    UnsupportedFormatError,
    VideoDecodeError,
    VideoEncodeError,
    VidlakeError,
)
from .htypes.bbox import convert_boxes  # noqa: F401
from .jobs import Job  # noqa: F401
from .scenes import DatasetItem, ItemRef, SceneDataset, SceneError, VideoScene, scene_dataset  # noqa: F401
from .sources import LinkedSample, RemoteRangeSource, Sample, link, open_remote_video  # noqa: F401
from .storage import RangeCache  # noqa: F401
from .video import (  # noqa: F401
    IMAGE_DECODERS,
    ClipPrefetcher,
    VideoReader,
    clear_output_cache,
    decoder_memory_budget,
    output_cache_info,
    parked_decoder_memory,
    set_decoder_memory_budget,
    set_ffmpeg_log_level,
    set_output_cache,
    set_total_decoder_memory_budget,
    total_decoder_memory_budget,
)
from .video.encode import Frames, VideoWriter, encode, frames, reencode_bytes  # noqa: F401
from .viewer import Viewer  # noqa: F401  (ds.visualize(), ds.videos[i].play(): vidlake/viewer/)

__version__ = "0.1.0"
