"""Watch a dataset in the browser: ``ds.videos[i].play()``, ``ds.visualize()``, ``vidlake view``.

A small local web app (``server.py``: the standard library's threaded HTTP server; ``pages.py``:
HTML rendered on the server; ``static/``: one script and one style sheet shipped in the wheel,
no build step, no CDN):

* the grid page shows every row with a thumbnail and its tensors' values;
* a sample page plays the video: the stored file itself, streamed to ``<video>`` with Range
  requests, when the browser can decode it; otherwise the *frame player* shows the frames
  vidlake decodes (JPEG, frame-exact). The frame counter and timestamp come from the stored
  packet index; the arrow keys step one frame and show exactly vidlake's frame N; boxes of
  aligned ``sequence[bbox]`` tensors (every coordinate mode), class labels and ids are drawn on
  the frame they belong to, during playback too (``requestVideoFrameCallback``).

    >>> import vidlake
    >>> ds = vidlake.load("./video_ds", read_only=True)
    >>> ds.videos[0].play()                 # opens the default browser ($BROWSER) or shows inline in Jupyter
    >>> with ds.visualize() as v:           # the whole dataset
    ...     print(v.url)
"""
from __future__ import annotations

import sys
import webbrowser
from typing import TYPE_CHECKING, Any

from .server import Viewer, close_all

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import Dataset, Tensor

__all__ = ["Player", "Viewer", "close_all", "in_notebook", "play", "visualize"]

#: one viewer per dataset object for ``play()`` (the server lives until exit or close_all())
_PLAY_VIEWERS: dict[int, Viewer] = {}


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), where pages are shown inline."""
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    try:
        shell = ip.get_ipython()
    except AttributeError:
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Player:
    """What ``play()`` returns: the sample page's ``url``; in Jupyter it displays inline (an
    iframe of that page), elsewhere the page was opened with :mod:`webbrowser`."""

    def __init__(self, viewer: Viewer, tensor: str, row: int) -> None:
        self.viewer = viewer
        self.tensor = tensor
        self.row = row
        self.url = viewer.sample_url(tensor, row)

    def _repr_html_(self) -> str:
        return (f'<iframe src="{self.url}" width="100%" height="560" style="border:0" '
                f'title="vidlake {self.tensor}[{self.row}]"></iframe>')

    def __repr__(self) -> str:
        return f"Player({self.tensor}[{self.row}], {self.url})"


def _open(url: str, open_browser: bool | None) -> None:
    if open_browser is None:
        open_browser = not in_notebook()
    if open_browser:
        webbrowser.open(url)


def play(tensor: Tensor, row: int, open_browser: bool | None = None) -> Player:
    """Show sample ``row`` of a video (or image sequence) tensor: a viewer of its dataset is
    started once (127.0.0.1, free port) and the sample page is opened in the default browser
    (``$BROWSER`` is honoured) or, in Jupyter, returned for inline display. Returns at once:
    the browser streams the bytes it needs with Range requests.

        >>> ds.videos[1].play()
        Player(videos[1], http://127.0.0.1:43117/.../s/videos/1)
    """
    ds = tensor.dataset
    if not (tensor.spec.video or tensor.htype == "sequence[image]"):
        raise ValueError(f"{tensor.key} is a {tensor.htype!r} tensor; play() is for video and "
                         "sequence[image] tensors (ds.visualize() shows every tensor)")
    if not 0 <= int(row) < len(tensor):
        raise IndexError(f"{tensor.key}: sample {row} out of range for {len(tensor)} samples")
    v = _PLAY_VIEWERS.get(id(ds))
    if v is None or v.closed or v.ds is not ds:
        v = _PLAY_VIEWERS[id(ds)] = Viewer(ds)
    p = Player(v, tensor.key, int(row))
    _open(p.url, open_browser)
    return p


def visualize(ds: Dataset, open_browser: bool | None = None, port: int = 0, **kwargs: Any) -> Viewer:
    """Start a viewer of ``ds`` and open its grid page (browser, or inline in Jupyter).
    The viewer stops on ``close()``, at the end of a ``with`` block or at exit.

        >>> with ds.visualize() as v:
        ...     input(f"browsing {v.url}; press enter to stop")
    """
    v = Viewer(ds, port=port, **kwargs)
    _open(v.url, open_browser)
    return v
