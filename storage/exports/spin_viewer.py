"""``viewer.html``: a self-contained 360° viewer of a spin's frames.

One file, the frames inside it as ``data:`` URIs, so it opens from a disk, a mail or a
product page's upload and fetches nothing. Dragging turns the product (one full turn per
width of the picture), the arrow keys step a frame, and it turns by itself until the
first drag or key (the button toggles that). The frame shown is in the picture's
``data-frame`` attribute.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from prodseg.jsonio import dumps
from prodseg.storage.exports.markup import escape

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>{title}</title>
<style>
body {{ margin: 0; font: 14px system-ui, sans-serif; background: #f4f4f4; color: #222; }}
main {{ max-width: 720px; margin: 0 auto; padding: 16px; text-align: center; }}
#spin {{ width: 100%; aspect-ratio: 1; background: {checker}; cursor: grab;
         touch-action: none; user-select: none; outline: none; }}
#spin:active {{ cursor: grabbing; }}
#spin img {{ width: 100%; height: 100%; display: block; pointer-events: none; }}
.bar {{ display: flex; justify-content: space-between; align-items: center; margin-top: 8px; }}
button {{ font: inherit; padding: 4px 12px; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<div id="spin" tabindex="0" data-frame="0" aria-label="drag or use the arrow keys to turn">
<img id="frame" alt="frame 1 of {count}" src="">
</div>
<div class="bar">
<span id="counter">1 / {count}</span>
<button id="auto" type="button" aria-pressed="true">pause</button>
</div>
</main>
<script>
(function () {{
  "use strict";
  var frames = {frames};
  var spin = document.getElementById("spin");
  var img = document.getElementById("frame");
  var counter = document.getElementById("counter");
  var autoButton = document.getElementById("auto");
  var current = 0, timer = null, dragX = null, dragFrame = 0;
  var cache = frames.map(function (src) {{ var i = new Image(); i.src = src; return i; }});
  function show(k) {{
    current = ((k % frames.length) + frames.length) % frames.length;
    img.src = cache[current].src;
    img.alt = "frame " + (current + 1) + " of " + frames.length;
    spin.setAttribute("data-frame", String(current));
    counter.textContent = (current + 1) + " / " + frames.length;
  }}
  function setAuto(on) {{
    if (timer !== null) {{ clearInterval(timer); timer = null; }}
    if (on && frames.length > 1) {{
      timer = setInterval(function () {{ show(current + 1); }}, {interval_ms});
    }}
    autoButton.textContent = on ? "pause" : "turn";
    autoButton.setAttribute("aria-pressed", on ? "true" : "false");
  }}
  spin.addEventListener("pointerdown", function (e) {{
    setAuto(false);
    dragX = e.clientX; dragFrame = current;
    spin.setPointerCapture(e.pointerId);
    spin.focus();
  }});
  spin.addEventListener("pointermove", function (e) {{
    if (dragX === null) return;
    var perFrame = spin.clientWidth / frames.length;
    show(dragFrame - Math.round((e.clientX - dragX) / perFrame));
  }});
  function endDrag() {{ dragX = null; }}
  spin.addEventListener("pointerup", endDrag);
  spin.addEventListener("pointercancel", endDrag);
  document.addEventListener("keydown", function (e) {{
    if (e.key === "ArrowRight") {{ setAuto(false); show(current + 1); e.preventDefault(); }}
    else if (e.key === "ArrowLeft") {{ setAuto(false); show(current - 1); e.preventDefault(); }}
  }});
  autoButton.addEventListener("click", function () {{ setAuto(timer === null); }});
  show(0);
  setAuto(true);
}})();
</script>
</body>
</html>
"""

_CHECKER = ("repeating-conic-gradient(#e6e6e6 0 25%, #fff 0 50%) 50% / 24px 24px")
_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           "script-src 'unsafe-inline'")
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def viewer_html(title: str, frames: Sequence[bytes], image_format: str,
                seconds_per_turn: float = 6.0) -> str:
    """The viewer page for ``frames`` in rotation order.

    Args:
        title: the page's heading (the product).
        frames: the encoded frames, at least one.
        image_format: ``jpeg``, ``png`` or ``webp``.
        seconds_per_turn: how long one turn takes while it turns by itself.

    Raises:
        ValueError: no frames, or an unknown format.
    """
    if not frames:
        raise ValueError("a viewer needs at least one frame")
    media = MEDIA_TYPES.get(image_format)
    if media is None:
        raise ValueError(f"unknown frame format {image_format!r}")
    uris = [f"data:{media};base64,{base64.b64encode(f).decode('ascii')}" for f in frames]
    # "</" never occurs in base64 or in these JSON strings, so the script cannot be closed.
    return _PAGE.format(title=escape(title), count=len(frames), frames=dumps(uris),
                        interval_ms=max(round(seconds_per_turn * 1000 / len(frames)), 16),
                        checker=_CHECKER, policy=_POLICY)
