"""The viewer's pages, rendered on the server as plain HTML (no template engine, no build step).

Every page names the dataset's tensors and samples in its markup and points at each video by
a URL (``<video src=...>``), so it reads without its script; ``static/viewer.js`` adds
playback, frame stepping and the overlays.

    >>> print(error_page("/tok/", "No such sample", "videos[9]: the tensor has 3 samples")[:15])
    <!doctype html>
"""
from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .media import is_image_sequence, player_tensors, row_values

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import Dataset

__all__ = ["error_page", "grid_page", "sample_page"]

PAGE_SIZE = 48


def _head(base: str, title: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title>"
            f"<link rel=\"stylesheet\" href=\"{base}static/viewer.css\"></head><body>\n")


def _foot(base: str) -> str:
    return f"<script src=\"{base}static/viewer.js\"></script>\n</body></html>\n"


def error_page(base: str, title: str, message: str) -> str:
    """A page that says what went wrong (a missing sample, an unreadable video...)."""
    return (_head(base, f"vidlake viewer: {title}")
            + f"<header><a href=\"{base}\">dataset</a></header>\n"
            f"<main class=\"error\"><h1>{escape(title)}</h1><p id=\"error-message\">{escape(message)}</p></main>\n"
            "</body></html>\n")


def _thumb_url(base: str, tensor: str, row: int) -> str:
    if tensor:
        return f"{base}thumb/{quote(tensor)}/{row}"
    return ""


def grid_page(base: str, ds: Dataset, page: int = 0) -> str:
    """The dataset's rows as a grid of cards: a thumbnail of the row's video (or first image of
    its image sequence), its tensors' short values, a link to the sample page."""
    tensors = ds.tensors
    players = player_tensors(ds)
    n_rows = max((len(t) for t in tensors.values()), default=0)
    pages = max(1, -(-n_rows // PAGE_SIZE))
    page = min(max(0, page), pages - 1)
    out = [_head(base, f"vidlake viewer: {ds.path}")]
    out.append(f"<header><h1>{escape(str(ds.path))}</h1><p class=\"summary\">{n_rows} samples; tensors: ")
    out.append(", ".join(f"<span class=\"tensor\" title=\"{escape(t.htype)}\">{escape(k)}</span> "
                         f"<span class=\"htype\">({escape(t.htype)})</span>" for k, t in tensors.items()))
    out.append("</p></header>\n<main class=\"grid\" id=\"grid\">\n")
    for row in range(page * PAGE_SIZE, min(n_rows, (page + 1) * PAGE_SIZE)):
        main = next((p for p in players if row < len(tensors[p])), "")
        href = f"{base}s/{quote(main)}/{row}" if main else f"{base}row/{row}"
        out.append(f"<article class=\"card\" data-row=\"{row}\"><a href=\"{href}\">")
        if main:
            out.append(f"<img class=\"thumb\" loading=\"lazy\" alt=\"{escape(main)}[{row}]\" "
                       f"src=\"{_thumb_url(base, main, row)}\">")
        out.append(f"<div class=\"row-title\">#{row}{' ' + escape(main) if main else ''}</div></a>")
        out.append("<dl>")
        for v in row_values(ds, row, skip=[main] if main else []):
            if v["kind"] in ("video", "images"):
                text = f"<a href=\"{base}s/{quote(v['tensor'])}/{row}\">{escape(v['text'])}</a>"
            else:
                text = escape(v["text"][:160])
            out.append(f"<dt>{escape(v['tensor'])}</dt><dd class=\"{v['kind']}\">{text}</dd>")
        out.append("</dl></article>\n")
    out.append("</main>\n")
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(f"<a href=\"{base}?page={page - 1}\">previous</a>")
        nav.append(f"page {page + 1} of {pages}")
        if page + 1 < pages:
            nav.append(f"<a href=\"{base}?page={page + 1}\">next</a>")
        out.append(f"<nav class=\"pages\">{' | '.join(nav)}</nav>\n")
    out.append(_foot(base))
    return "".join(out)


def _script_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">``."""
    return json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def sample_page(base: str, ds: Dataset, main: str, row: int, payload: dict[str, Any],
                native: bool, why: str) -> str:
    """The sample page: the player (the stored file through ``<video>``, or vidlake's frames
    through the frame player), frame counter and timestamp, overlays, filmstrips, metadata."""
    t = ds[main]
    w, h = int(payload["width"]), int(payload["height"])
    tq = quote(main)
    payload = dict(payload)
    payload["mode"] = "native" if native else "frames"
    payload["video_url"] = f"{base}video/{tq}/{row}" if t.spec.video else None
    payload["frame_url"] = (f"{base}frame/{tq}/{row}/{{n}}" if t.spec.video
                            else f"{base}item/{tq}/{row}/{{n}}")
    payload["item_url"] = f"{base}item/{{tensor}}/{row}/{{n}}"
    payload["fallback_reason"] = why
    title = f"{main}[{row}]"
    out = [_head(base, f"vidlake viewer: {ds.path} {title}")]
    n_rows = max((len(x) for x in ds.tensors.values()), default=0)
    nav = []
    if row > 0:
        nav.append(f"<a id=\"prev-sample\" href=\"{base}s/{tq}/{row - 1}\">&larr; #{row - 1}</a>")
    if row + 1 < min(n_rows, len(t)):
        nav.append(f"<a id=\"next-sample\" href=\"{base}s/{tq}/{row + 1}\">#{row + 1} &rarr;</a>")
    out.append(f"<header><a href=\"{base}\">{escape(str(ds.path))}</a> / <span class=\"tensor\">{escape(title)}"
               f"</span> <nav class=\"samples\">{' '.join(nav)}</nav></header>\n<main class=\"sample\">\n")
    out.append("<section class=\"player\">\n")
    style = f"width:{w}px;max-width:100%;aspect-ratio:{w}/{h}"
    out.append(f"<div id=\"stage\" class=\"stage\" style=\"{style}\" data-mode=\"{payload['mode']}\">")
    if native:
        out.append(f"<video id=\"video\" width=\"{w}\" height=\"{h}\" preload=\"metadata\" muted playsinline "
                   f"src=\"{escape(payload['video_url'])}\"></video>")
    else:
        out.append(f"<canvas id=\"frame\" width=\"{w}\" height=\"{h}\"></canvas>")
    out.append(f"<canvas id=\"overlay\" width=\"{w}\" height=\"{h}\"></canvas></div>\n")
    out.append("<div class=\"controls\"><button id=\"play\" type=\"button\">play</button>"
               "<button id=\"prev\" type=\"button\" title=\"previous frame (left arrow)\">&#9664;</button>"
               "<button id=\"next\" type=\"button\" title=\"next frame (right arrow)\">&#9654;</button>"
               f"<input id=\"scrub\" type=\"range\" min=\"0\" max=\"{max(0, payload['frames'] - 1)}\" value=\"0\">"
               f"<span id=\"counter\">frame 0 / {payload['frames']}</span> <span id=\"time\"></span></div>\n")
    mode_note = ("played by the browser from the stored file (Range requests)" if native else
                 f"frame player: vidlake decodes each frame (JPEG); {why}" if t.spec.video else
                 f"image sequence at {1 / payload['frame_duration']:.0f} frames/s")
    out.append(f"<p class=\"mode\" id=\"mode\">{escape(mode_note)}</p>\n<div id=\"captions\"></div>\n")
    for fs in payload["filmstrips"]:
        ft = quote(fs["tensor"])
        out.append(f"<div class=\"filmstrip\" data-tensor=\"{escape(fs['tensor'])}\"><span>{escape(fs['tensor'])}</span>")
        for k in range(min(int(fs["count"]), 300)):
            out.append(f"<img loading=\"lazy\" data-frame=\"{k}\" alt=\"{k}\" src=\"{base}item/{ft}/{row}/{k}\">")
        out.append("</div>\n")
    out.append("</section>\n<aside class=\"meta\"><h2>tensors</h2><dl>\n")
    out.append(f"<dt>{escape(main)}</dt><dd class=\"video\">{payload['frames']} frames, {w}x{h}</dd>")
    for ov in payload["overlays"]:
        out.append(f"<dt>{escape(ov['tensor'])}</dt><dd class=\"overlay\">boxes drawn on the frames"
                   f"{' (whole row)' if ov['static'] else ''}</dd>")
    for cap, on in payload["box_captions"].items():
        out.append(f"<dt>{escape(cap)}</dt><dd class=\"overlay\">captions on the boxes of {escape(on)}</dd>")
    for c in payload["captions"]:
        out.append(f"<dt>{escape(c['tensor'])}</dt><dd class=\"overlay\">shown per frame under the player</dd>")
    shown = [main, *[o["tensor"] for o in payload["overlays"]], *payload["box_captions"],
             *[c["tensor"] for c in payload["captions"]]]
    for v in row_values(ds, row, skip=shown):
        if v["kind"] in ("video", "images") and row < len(ds[v["tensor"]]):
            body = f"<a href=\"{base}s/{quote(v['tensor'])}/{row}\">{escape(v['text'])}</a>"
        elif v["kind"] == "image":
            body = f"<img class=\"still\" loading=\"lazy\" src=\"{base}item/{quote(v['tensor'])}/{row}/0\" alt=\"\">"
        elif v["kind"] == "json":
            body = f"<pre>{escape(v['text'])}</pre>"
        else:
            body = escape(v["text"])
        out.append(f"<dt>{escape(v['tensor'])} <span class=\"htype\">{escape(v['htype'])}</span></dt>"
                   f"<dd class=\"{v['kind']}\">{body}</dd>\n")
    out.append("</dl><p class=\"keys\">keys: &larr; &rarr; step one frame, space play/pause, "
               "Home/End first/last frame</p></aside>\n</main>\n")
    out.append(f"<script type=\"application/json\" id=\"vidlake-data\">{_script_json(payload)}</script>\n")
    out.append(_foot(base))
    return "".join(out)


def row_page(base: str, ds: Dataset, row: int) -> str:
    """A row without a video or image sequence: its tensors' values."""
    out = [_head(base, f"vidlake viewer: {ds.path} #{row}")]
    out.append(f"<header><a href=\"{base}\">{escape(str(ds.path))}</a> / #{row}</header>\n<main class=\"sample\">"
               "<aside class=\"meta\"><dl>")
    for v in row_values(ds, row):
        body = f"<pre>{escape(v['text'])}</pre>" if v["kind"] == "json" else escape(v["text"])
        out.append(f"<dt>{escape(v['tensor'])}</dt><dd class=\"{v['kind']}\">{body}</dd>")
    out.append("</dl></aside></main></body></html>\n")
    return "".join(out)


def is_player(ds: Dataset, name: str) -> bool:
    t = ds.tensors.get(name)
    return t is not None and (t.spec.video or is_image_sequence(t))
