"""Finding the videos of a collection: :func:`scan` a folder, a glob, an ``s3://`` prefix or an
HTTP directory listing.

    >>> import vidlake
    >>> found = vidlake.scan("s3://bucket/input/", creds={"aws_region": "eu-central-1"})
    >>> len(found), found.skipped_count           # videos, other files (counted, not used)
    (120, 3)
    >>> ds.videos.extend(found.samples())         # or found.links() for a link[video] tensor

Video files are recognised by extension only, case-insensitively (``clip.MP4`` is an mp4):
:data:`VIDEO_EXTENSIONS`, the list of the Lightly Worker's docs (``.mp4 .m4v .hevc .mpg
.mpeg .avi .mov .webm``) plus the other containers vidlake stores (``.mkv .ts .ivf .h264``).
Everything else is skipped and counted by extension. Nothing is opened or decoded here.
"""
from __future__ import annotations

import glob as _glob
import html.parser
import os
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import read
from ..errors import StorageError
from ..sources import link, open_remote_video
from ..storage import get_provider, url_scheme
from ..storage.creds import redact
from ..video import VideoReader

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["VIDEO_EXTENSIONS", "ScanResult", "is_video_name", "scan"]

#: recognised video file extensions (lower case; matched case-insensitively)
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".hevc", ".mpg", ".mpeg", ".avi", ".mov", ".webm",
                                     ".mkv", ".ts", ".ivf", ".h264")

_GLOB_CHARS = frozenset("*?[")


def _ext(name: str) -> str:
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return os.path.splitext(base)[1].lower()


def is_video_name(name: str) -> bool:
    """Whether ``name`` (a path, key or URL) has a video extension, in any letter case.

        >>> is_video_name("a/CLIP.Mp4"), is_video_name("notes.txt"), is_video_name("mp4")
        (True, False, False)
    """
    path = urllib.parse.urlsplit(name).path if url_scheme(name) else name
    return _ext(path) in VIDEO_EXTENSIONS


@dataclass
class ScanResult:
    """What :func:`scan` found: ``videos`` (paths or URLs, sorted), ``skipped`` (other files),
    ``creds`` (for remote videos). Iterating yields the videos.

    ``samples()`` gives ``vidlake.read`` samples for a video tensor (local files) or
    ``vidlake.link`` samples for remote ones, ``links()`` always links, and ``open(i)`` a
    :class:`vidlake.VideoReader` of video ``i`` (ranged reads for remote ones).
    """

    source: str
    videos: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    creds: dict[str, Any] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[str]:
        return iter(self.videos)

    def __getitem__(self, i: int) -> str:
        return self.videos[i]

    @property
    def skipped_count(self) -> int:
        """How many files were skipped (not a video extension)."""
        return len(self.skipped)

    @property
    def skipped_by_extension(self) -> dict[str, int]:
        """Skipped files counted by (lower-case) extension; ``""`` for none."""
        return dict(Counter(_ext(urllib.parse.urlsplit(s).path if url_scheme(s) else s)
                            for s in self.skipped))

    def summary(self) -> str:
        """One line: ``"12 videos, 3 other files skipped (.txt: 2, .jpg: 1) in <source>"``."""
        parts = ", ".join(f"{e or '(none)'}: {n}" for e, n in sorted(self.skipped_by_extension.items()))
        tail = f" ({parts})" if parts else ""
        return (f"{len(self.videos)} video(s), {self.skipped_count} other file(s) skipped{tail} "
                f"in {redact(self.source)}")

    def is_remote(self, i: int) -> bool:
        return url_scheme(self.videos[i]) not in ("", "file")

    def open(self, i: int, threads: int | None = None) -> VideoReader:
        """A :class:`vidlake.VideoReader` of video ``i``."""
        return open_video(self.videos[i], self.creds, threads=threads)

    def samples(self) -> list[Any]:
        """One sample per video for ``ds.<video tensor>.extend``: ``vidlake.read(path)`` for
        local files, ``vidlake.link(url)`` for remote ones (a ``link[video]`` tensor)."""
        return [link(v) if self.is_remote(i) else read(v) for i, v in enumerate(self.videos)]

    def links(self, creds_key: str | None = None) -> list[Any]:
        """``vidlake.link(url, creds_key)`` per video, for a ``link[video]`` tensor."""
        return [link(v, creds_key=creds_key) for v in self.videos]


def open_video(path: str, creds: dict[str, Any] | None = None, *, threads: int | None = None) -> VideoReader:
    """A reader of a local path or a remote URL (ranged reads through the storage layer)."""
    scheme = url_scheme(path)
    if scheme == "file":
        path = urllib.parse.urlsplit(path).path
        scheme = ""
    if scheme == "":
        return VideoReader(path, threads=threads)
    return open_remote_video(path, creds, threads=threads, cache=False)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            for k, v in attrs:
                if k.lower() == "href" and v:
                    self.hrefs.append(v)


def _http_listing(url: str, recursive: bool, timeout: float = 30.0, _depth: int = 0) -> list[str]:
    """File URLs linked from an HTTP directory listing page (``python -m http.server``,
    nginx ``autoindex``, Apache): links below ``url`` only; sub-folders when ``recursive``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            ctype = r.headers.get("Content-Type", "")
            body = r.read()
            final = r.geturl()  # after a redirect to the folder's "/" form
    except OSError as e:
        raise StorageError(f"{redact(url)}: cannot list: {e}") from None
    base = final if final.endswith("/") else final.rsplit("/", 1)[0] + "/"
    if "html" not in ctype.lower():
        raise StorageError(f"{redact(url)}: not an HTML directory listing (Content-Type {ctype!r})")
    p = _Links()
    p.feed(body.decode("utf-8", "replace"))
    out: list[str] = []
    for href in p.hrefs:
        full = urllib.parse.urljoin(base, href.split("#", 1)[0].split("?", 1)[0])
        if not full.startswith(base) or full == base:
            continue  # parent folder, sort links, other sites
        if full.endswith("/"):
            if recursive and _depth < 16:
                out.extend(_http_listing(full, recursive, timeout, _depth + 1))
        else:
            out.append(full)
    return sorted(set(out))


def _list_local(source: str, recursive: bool) -> list[str]:
    if any(c in source for c in _GLOB_CHARS):
        return sorted(p for p in _glob.glob(source, recursive=True) if os.path.isfile(p))
    if os.path.isfile(source):
        return [source]
    if not os.path.isdir(source):
        raise FileNotFoundError(f"{source}: no such file or folder")
    out: list[str] = []
    for dirpath, dirs, files in os.walk(source):
        dirs.sort()
        out.extend(os.path.join(dirpath, f) for f in sorted(files))
        if not recursive:
            break
    return out


def _list_provider(source: str, creds: dict[str, Any] | None, recursive: bool) -> list[str]:
    """Object URLs under a prefix (``s3://bucket/folder/``) through the storage layer."""
    root = source.rstrip("/")
    provider = get_provider(root, creds=creds, read_only=True)
    keys = provider.list("")
    if not recursive:
        keys = [k for k in keys if "/" not in k]
    return [f"{root}/{k}" for k in keys]


def scan(source: str | os.PathLike[str] | Sequence[str], creds: dict[str, Any] | None = None, *,
         recursive: bool = True) -> ScanResult:
    """The video files of ``source``: a local folder (recursive by default), a glob
    (``"data/**/*.mp4"``), a single file, an ``s3://bucket/prefix`` (any scheme with a storage
    provider that can list; ``creds`` as for datasets: ``aws_access_key_id``, ``endpoint_url``,
    ...), an ``http(s)://`` directory listing page, or a list of any of these.

        >>> found = vidlake.scan("videos/")
        >>> found.summary()
        '3 video(s), 1 other file(s) skipped (.txt: 1) in videos/'
    """
    if isinstance(source, (list, tuple)):
        parts = [scan(s, creds, recursive=recursive) for s in source]
        return ScanResult(", ".join(p.source for p in parts), [v for p in parts for v in p.videos],
                          [s for p in parts for s in p.skipped], creds)
    src = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    scheme = url_scheme(src)
    if scheme in ("", "file"):
        names = _list_local(urllib.parse.urlsplit(src).path if scheme == "file" else src, recursive)
    elif scheme in ("http", "https"):
        names = [src] if is_video_name(src) else _http_listing(src, recursive)
    else:
        names = [src] if is_video_name(src) else _list_provider(src, creds, recursive)
    videos = [n for n in names if is_video_name(n)]
    skipped = [n for n in names if not is_video_name(n)]
    return ScanResult(src, videos, skipped, creds)
