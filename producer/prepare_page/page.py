"""The prepare page: one HTML document with its script, talking to its own server only.

One product at a time: its reference with the proposed click (or box) and the preview
mask, the other views as thumbnails loaded when they scroll into sight, and the progress
count. Keys: Enter accepts; a click on the reference puts the click there, shift+click
adds a "not this" click, a drag draws a box, and the preview follows; V (or a click on a
thumbnail) makes the next view the reference; S skips; Esc brings the proposal back; the
arrow keys go to the previous or next product without deciding.
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>prodseg prepare {{catalog}}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; padding: 8px 16px; }
#top { display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
#bar { height: 6px; background: #eee; margin: 6px 0; }
#bar div { height: 100%; background: #2a4; width: 0; }
#product.accepted h2::after, #product.corrected h2::after { content: " \\2713"; color: #2a4; }
#product.skipped h2::after { content: " (skipped)"; color: #a50; font-size: 14px; }
.low { color: #c60; } .high { color: #276; }
#stage { position: relative; display: inline-block; max-width: 100%; cursor: crosshair;
         user-select: none; }
#stage img { display: block; width: min(100%, 720px); }
#stage img.layer { position: absolute; left: 0; top: 0; width: 100%; height: 100%;
                   max-width: none; max-height: none; pointer-events: none; }
.dot { position: absolute; width: 12px; height: 12px; margin: -6px; border-radius: 50%;
       border: 2px solid #fff; pointer-events: none; }
.dot.pos { background: #0c0; } .dot.neg { background: #e22; }
.box { position: absolute; border: 2px solid #1c5; pointer-events: none; }
#thumbs { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; }
#thumbs figure { margin: 0; border: 2px solid #ccc; cursor: pointer; font-size: 11px; }
#thumbs figure.ref { border-color: #06e; }
#thumbs img { display: block; width: 120px; height: 90px; object-fit: contain;
              background: #f4f4f4; }
#status { min-height: 1.2em; margin: 4px 0; } #status.error { color: #c00; }
kbd { border: 1px solid #aaa; border-radius: 3px; padding: 0 3px; background: #f8f8f8; }
</style></head>
<body>
<div id="top"><b>Prepare {{catalog}}</b><span id="progress"></span>
<span id="keys"><kbd>Enter</kbd> accept &middot; click / <kbd>Shift</kbd>+click / drag:
correct &middot; <kbd>V</kbd> next view as reference &middot; <kbd>S</kbd> skip &middot;
<kbd>Esc</kbd> proposal &middot; <kbd>&larr;</kbd> <kbd>&rarr;</kbd> products</span></div>
<div id="bar"><div></div></div>
<div id="product"><h2 id="name"></h2><div id="about"></div></div>
<div id="status"></div>
<div id="stage"><img id="photo" alt=""><img id="mask" class="layer" alt="" hidden></div>
<div id="thumbs"></div>
<script>
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token") || "";
  var $ = function (id) { return document.getElementById(id); };
  var cur = null, prompt = null, drag = null, asked = 0, busy = false;

  function api(path, body) {
    var init = { headers: { "X-Prodseg-Token": token }, cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST"; init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (t) {
        if (!r.ok) { throw new Error(t || r.statusText); } return JSON.parse(t); });
    });
  }
  function url(path) { return path + "?token=" + encodeURIComponent(token); }
  function say(text, bad) { var s = $("status"); s.textContent = text || "";
    s.className = bad ? "error" : ""; }
  function fail(e) { busy = false; say(String(e.message || e), true); }
  function el(tag, cls, text) { var e = document.createElement(tag);
    if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; }
    return e; }

  function showProgress(p) {
    var node = $("progress");
    node.textContent = p.decided + " of " + p.products + " decided (" + p.accepted +
      " accepted, " + p.corrected + " corrected, " + p.skipped + " skipped)";
    node.dataset.decided = p.decided; node.dataset.products = p.products;
    $("bar").firstChild.style.width = (100 * p.decided / Math.max(1, p.products)) + "%";
  }
  function proposal(d) {
    return { view: d.reference, points: d.points.slice(), neg_points: d.neg_points.slice(),
             box: d.box ? d.box.slice() : null };
  }
  function open(index) {
    busy = true; say("loading product " + (index + 1) + " ...");
    $("product").dataset.ready = "";
    return api("/api/product/" + index).then(function (d) {
      cur = d; prompt = proposal(d); busy = false; say(""); draw(true);
      $("product").dataset.ready = "1";
    }).catch(fail);
  }
  function base() { return "/api/product/" + cur.index + "/view/"; }
  function draw(newPhoto) {
    var d = cur, node = $("product");
    node.className = d.decision || ""; node.dataset.index = d.index;
    node.dataset.product = d.product; node.dataset.decision = d.decision || "";
    node.dataset.reference = prompt.view; node.dataset.previewed = "";
    $("name").textContent = "#" + (d.index + 1) + "  " + d.product;
    var c = d.confidence, about = $("about");
    about.textContent = (d.source || "clicked") + (c === null ? "" :
      ", confidence " + c.toFixed(2)) + "; reference " + d.views[prompt.view] + " (" +
      (prompt.view + 1) + " of " + d.views.length + ")";
    about.className = c !== null && c < 0.5 ? "low" : "high";
    showProgress(d.progress);
    if (newPhoto) {
      asked++;  // a preview asked for the photo shown before is not drawn on this one
      $("mask").hidden = true;
      $("photo").onload = marks;
      $("photo").src = url(base() + prompt.view + "/full");
      var thumbs = $("thumbs"); thumbs.textContent = "";
      d.views.forEach(function (name, k) {
        var f = el("figure", k === prompt.view ? "ref" : ""), img = el("img");
        img.loading = "lazy"; img.alt = name; img.src = url(base() + k + "/thumb");
        f.dataset.view = k; f.appendChild(img); f.appendChild(el("figcaption", "", name));
        f.addEventListener("click", function () { pick(k); });
        thumbs.appendChild(f);
      });
    }
    marks();
    if (prompt.points.length || prompt.box) { preview(); }
  }
  function marks() {
    var stage = $("stage");
    $("product").dataset.prompt = JSON.stringify(prompt);
    stage.querySelectorAll(".dot, .box").forEach(function (n) { n.remove(); });
    [["pos", prompt.points], ["neg", prompt.neg_points]].forEach(function (pair) {
      pair[1].forEach(function (p) {
        var dot = el("div", "dot " + pair[0]);
        dot.style.left = (100 * p[0] / size().w) + "%";
        dot.style.top = (100 * p[1] / size().h) + "%"; stage.appendChild(dot);
      });
    });
    if (prompt.box) {
      var b = el("div", "box"), s = size();
      b.style.left = (100 * prompt.box[0] / s.w) + "%";
      b.style.top = (100 * prompt.box[1] / s.h) + "%";
      b.style.width = (100 * (prompt.box[2] - prompt.box[0]) / s.w) + "%";
      b.style.height = (100 * (prompt.box[3] - prompt.box[1]) / s.h) + "%";
      stage.appendChild(b);
    }
  }
  function size() {
    // The full photo is served at its own size; the reference's is known before it loads.
    var img = $("photo");
    if (img.naturalWidth) { return { w: img.naturalWidth, h: img.naturalHeight }; }
    return { w: cur.width, h: cur.height };
  }
  function preview() {
    var mine = ++asked, product = cur.index;
    $("product").dataset.previewed = "";
    api("/api/product/" + product + "/preview", prompt).then(function (p) {
      if (mine !== asked || !cur || cur.index !== product || p.superseded) { return; }
      var m = $("mask"); m.src = p.mask; m.hidden = false;
      say("preview: score " + p.score.toFixed(3) + ", " + p.area + " px, " +
          p.seconds.toFixed(2) + " s");
      $("product").dataset.previewed = "1";
    }).catch(function (e) { if (mine === asked) { fail(e); } });
  }
  function pick(k) {
    if (!cur || k === prompt.view) { return; }
    prompt = { view: k, points: [], neg_points: [], box: null };
    if (k === cur.reference) { prompt = proposal(cur); }
    say("view " + cur.views[k] + " is the reference now: click the product on it");
    draw(true);
  }
  function decide(action) {
    if (!cur || busy) { return; }
    busy = true;
    var body = { action: action, view: prompt.view, points: prompt.points,
                 neg_points: prompt.neg_points, box: prompt.box };
    api("/api/product/" + cur.index + "/decide", body).then(function (r) {
      showProgress(r.progress); busy = false;
      if (r.next === null) {
        cur.decision = r.decision; asked++;  // a preview still coming is not drawn
        $("product").className = r.decision; $("product").dataset.decision = r.decision;
        say("every product has a decision: " + r.progress.decided + " of " +
            r.progress.products); $("product").dataset.done = "1"; return;
      }
      return open(r.next);
    }).catch(fail);
  }
  function where(e) {
    var r = $("photo").getBoundingClientRect(), s = size();
    // The pixel under the pointer (pixel x covers [x, x + 1) of the photo).
    return [Math.min(s.w - 1, Math.floor((e.clientX - r.left) * s.w / r.width)),
            Math.min(s.h - 1, Math.floor((e.clientY - r.top) * s.h / r.height))];
  }
  $("stage").addEventListener("mousedown", function (e) {
    if (e.button !== 0 || !cur) { return; }
    e.preventDefault(); drag = { from: where(e), shift: e.shiftKey, x: e.clientX, y: e.clientY };
  });
  window.addEventListener("mouseup", function (e) {
    if (!drag || !cur) { return; }
    var d = drag, to = where(e); drag = null;
    if (Math.abs(e.clientX - d.x) + Math.abs(e.clientY - d.y) > 8) {
      prompt.box = [Math.min(d.from[0], to[0]), Math.min(d.from[1], to[1]),
                    Math.max(d.from[0], to[0]), Math.max(d.from[1], to[1])];
      prompt.points = [];
    } else if (d.shift) {
      prompt.neg_points.push(d.from);
    } else {
      prompt.points = [d.from]; prompt.neg_points = []; prompt.box = null;
    }
    $("product").dataset.previewed = ""; marks(); preview();
  });
  document.addEventListener("keydown", function (e) {
    if (!cur || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var key = e.key;
    if (key === "Enter") { decide("accept"); }
    else if (key === "s" || key === "S") { decide("skip"); }
    else if (key === "v" || key === "V") {
      var n = cur.views.length; pick((prompt.view + (e.shiftKey ? n - 1 : 1)) % n); }
    else if (key === "Escape") { prompt = proposal(cur); draw(true); }
    else if (key === "ArrowRight" && !busy) { open((cur.index + 1) % cur.progress.products); }
    else if (key === "ArrowLeft" && !busy) {
      open((cur.index + cur.progress.products - 1) % cur.progress.products); }
    else { return; }
    e.preventDefault();
  });
  api("/api/state").then(function (s) {
    showProgress(s.progress);
    if (s.open === null) { say("every product has a decision; the arrows go through them");
      return open(0); }
    return open(s.open);
  }).catch(fail);
})();
</script>
</body></html>
"""
