// vidlake viewer: playback, frame stepping and overlays for the sample page.
//
// The page embeds its facts as JSON (#vidlake-data): the stored timestamps of every frame
// (from vidlake's packet index), boxes per frame in pixels of the decoded frame, captions.
// Two players share one interface (window.vidlakePlayer):
//  * native: <video> plays the stored file (Range requests). The frame shown is found from
//    the presented frame's media time (requestVideoFrameCallback), so the counter and the
//    boxes follow the frame on screen, during playback too. Stepping seeks to the middle of
//    frame N's display interval [ts[N], ts[N+1]), which shows frame N exactly.
//  * frames: a canvas shows JPEGs of vidlake's own decode (frame N is vidlake's frame N),
//    clocked by the stored timestamps; late frames are skipped, never shown at the wrong time.
(function () {
  "use strict";
  const dataEl = document.getElementById("vidlake-data");
  if (!dataEl) return;
  const D = JSON.parse(dataEl.textContent);
  const ts = D.timestamps;
  const N = ts.length;
  const W = D.width, H = D.height;
  const overlay = document.getElementById("overlay");
  const octx = overlay.getContext("2d");
  const counter = document.getElementById("counter");
  const timeEl = document.getElementById("time");
  const scrub = document.getElementById("scrub");
  const playBtn = document.getElementById("play");
  const captionsEl = document.getElementById("captions");
  const COLORS = ["#ffd400", "#00e5ff", "#ff4081", "#76ff03", "#ff9100", "#b388ff"];
  const log = [];  // (frame, media time) of every frame drawn: read by the tests
  let current = -1;

  function frameAt(t) {  // the frame shown at time t: the last k with ts[k] <= t
    if (!N || t < ts[0]) return 0;
    const tt = t + 1e-4;
    let lo = 0, hi = N - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ts[mid] <= tt) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  function endTime() { return N ? ts[N - 1] + D.frame_duration : 0; }
  function midTime(n) {  // the middle of frame n's display interval
    const a = ts[n];
    const b = n + 1 < N ? ts[n + 1] : a + D.frame_duration;
    return (a + b) / 2;
  }
  function boxesOf(ov, n) { return ov.static ? ov.boxes[0] : (ov.boxes[n] || []); }

  function draw(n) {
    octx.clearRect(0, 0, W, H);
    const lw = Math.max(2, Math.round(Math.min(W, H) / 200));
    octx.lineWidth = lw;
    octx.font = `${Math.max(12, Math.round(H / 30))}px sans-serif`;
    octx.textBaseline = "bottom";
    D.overlays.forEach((ov, i) => {
      const color = COLORS[i % COLORS.length];
      octx.strokeStyle = color;
      const caps = ov.captions && !ov.static ? (ov.captions[n] || []) : [];
      boxesOf(ov, n).forEach((b, j) => {
        octx.strokeRect(b[0], b[1], b[2] - b[0], b[3] - b[1]);
        const text = caps[j];
        if (text) {
          const tw = octx.measureText(text).width + 6;
          const th = Math.max(12, Math.round(H / 30)) + 4;
          const y = b[1] > th ? b[1] : b[3] + th;
          octx.fillStyle = color;
          octx.fillRect(b[0] - lw / 2, y - th, tw, th);
          octx.fillStyle = "#000";
          octx.fillText(text, b[0] + 3 - lw / 2, y - 2);
        }
      });
    });
  }

  function show(n, mediaTime) {
    n = Math.max(0, Math.min(N - 1, n));
    draw(n);
    current = n;
    counter.textContent = `frame ${n} / ${N}`;
    timeEl.textContent = `${ts[n].toFixed(3)} s`;
    scrub.value = String(n);
    captionsEl.textContent = "";
    D.captions.forEach((c) => {
      const div = document.createElement("div");
      div.textContent = `${c.tensor}: ${c.values[n] === undefined ? "" : c.values[n]}`;
      captionsEl.appendChild(div);
    });
    document.querySelectorAll(".filmstrip img.current").forEach((im) => im.classList.remove("current"));
    document.querySelectorAll(`.filmstrip img[data-frame="${n}"]`).forEach((im) => im.classList.add("current"));
    log.push([n, mediaTime === undefined ? null : mediaTime]);
    if (log.length > 5000) log.splice(0, 1000);
  }

  // -- native: the browser decodes the stored file --------------------------------------------
  function nativePlayer(video) {
    let target = null;  // the frame a step asked for, until the browser shows it
    const P = {
      mode: "native",
      play() { target = null; if (current >= N - 1) video.currentTime = midTime(0); return video.play(); },
      pause() { video.pause(); },
      paused() { return video.paused; },
      time() { return video.currentTime; },
      frame() { return target !== null ? target : Math.max(0, current); },
      ready() { return video.readyState >= 2 && !video.seeking && (target === null || current === target); },
      seekFrame(n) {
        n = Math.max(0, Math.min(N - 1, n));
        video.pause();
        target = n;
        video.currentTime = midTime(n);
      },
    };
    if ("requestVideoFrameCallback" in video) {
      const onFrame = (now, md) => {
        const n = frameAt(md.mediaTime);
        if (target === null || n === target || !video.paused) {
          if (n === target) target = null;
          show(n, md.mediaTime);
        }
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    } else {
      video.addEventListener("timeupdate", () => show(frameAt(video.currentTime), video.currentTime));
    }
    video.addEventListener("seeked", () => {
      if (video.paused) {
        const n = frameAt(video.currentTime);
        if (target === null || n === target) { target = null; show(n, video.currentTime); }
      }
    });
    video.addEventListener("loadeddata", () => { if (current < 0) show(frameAt(video.currentTime), video.currentTime); });
    video.addEventListener("play", () => { playBtn.textContent = "pause"; });
    video.addEventListener("pause", () => { playBtn.textContent = "play"; });
    video.addEventListener("error", () => {
      // the browser cannot decode it after all: vidlake decodes the frames instead
      const canvas = document.createElement("canvas");
      canvas.id = "frame"; canvas.width = W; canvas.height = H;
      video.replaceWith(canvas);
      document.getElementById("stage").dataset.mode = "frames";
      document.getElementById("mode").textContent = "frame player: the browser could not decode this video";
      window.vidlakePlayer = framePlayer(canvas);
      window.vidlakePlayer.seekFrame(0);
    });
    return P;
  }

  // -- frames: vidlake decodes, the page shows JPEGs on a canvas --------------------------------
  function framePlayer(canvas) {
    const ctx = canvas.getContext("2d");
    const cache = new Map();
    let playing = false, clock0 = 0, t0 = 0, shown = -1, want = 0, busy = false, seq = 0;
    function load(n) {
      let p = cache.get(n);
      if (!p) {
        p = new Promise((resolve, reject) => {
          const im = new Image();
          im.onload = () => resolve(im);
          im.onerror = () => reject(new Error(`frame ${n} could not be loaded`));
          im.src = D.frame_url.replace("{n}", String(n));
        });
        p.catch(() => cache.delete(n));
        cache.set(n, p);
        if (cache.size > 48) cache.delete(cache.keys().next().value);
      }
      return p;
    }
    function paint(n, im) {
      ctx.drawImage(im, 0, 0, W, H);
      shown = n;
      show(n, ts[n]);
    }
    function clock() { return playing ? t0 + (performance.now() - clock0) / 1000 : ts[Math.max(0, shown)] || 0; }
    function tick() {
      if (!playing) return;
      const t = clock();
      if (t >= endTime()) { playing = false; playBtn.textContent = "play"; return; }
      const n = frameAt(t);
      if (n !== shown && !busy) {
        busy = true;
        const my = seq;
        for (let k = 1; k <= 3 && n + k < N; k++) load(n + k);
        load(n).then((im) => { busy = false; if (my === seq && playing && n >= shown) paint(n, im); })
          .catch(() => { busy = false; });
      }
      requestAnimationFrame(tick);
    }
    const P = {
      mode: "frames",
      play() {
        if (shown >= N - 1) shown = -1;
        const start = shown < 0 ? 0 : shown;
        t0 = ts[start]; clock0 = performance.now(); playing = true; playBtn.textContent = "pause";
        requestAnimationFrame(tick);
        return Promise.resolve();
      },
      pause() { playing = false; seq++; playBtn.textContent = "play"; },
      paused() { return !playing; },
      time() { return clock(); },
      frame() { return want; },
      ready() { return shown === want && !busy; },
      seekFrame(n) {
        n = Math.max(0, Math.min(N - 1, n));
        playing = false; playBtn.textContent = "play";
        const my = ++seq;
        want = n;
        load(n).then((im) => { if (my === seq) paint(n, im); });
      },
    };
    return P;
  }

  const video = document.getElementById("video");
  window.vidlakePlayer = video ? nativePlayer(video) : framePlayer(document.getElementById("frame"));
  window.vidlakePlayer.frameAt = frameAt;
  window.vidlake = { data: D, frameAt, midTime, log, player: () => window.vidlakePlayer, current: () => current };
  if (!video) window.vidlakePlayer.seekFrame(0);

  function P() { return window.vidlakePlayer; }
  function step(d) {
    const p = P();
    if (!p.paused()) p.pause();
    p.seekFrame(p.frame() + d);
  }
  playBtn.addEventListener("click", () => { if (P().paused()) P().play(); else P().pause(); });
  document.getElementById("prev").addEventListener("click", () => step(-1));
  document.getElementById("next").addEventListener("click", () => step(1));
  scrub.addEventListener("input", () => P().seekFrame(parseInt(scrub.value, 10)));
  document.querySelectorAll(".filmstrip img").forEach((im) => {
    im.addEventListener("click", () => P().seekFrame(parseInt(im.dataset.frame, 10)));
  });
  document.addEventListener("keydown", (e) => {
    if (e.target && (e.target.tagName === "INPUT" && e.target.type !== "range")) return;
    if (e.key === "ArrowRight") { step(1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { step(-1); e.preventDefault(); }
    else if (e.key === " ") { if (P().paused()) P().play(); else P().pause(); e.preventDefault(); }
    else if (e.key === "Home") { P().seekFrame(0); e.preventDefault(); }
    else if (e.key === "End") { P().seekFrame(N - 1); e.preventDefault(); }
  });
})();
