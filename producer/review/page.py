"""The review page: one HTML document with its script, talking to its own server only.

Left, the catalog's products (flagged first, with the reasons; filters and a search);
right, one product's views with their masks, boxes and scores, the reference and the
bank members marked. Per view: accept, reject (not the product here), a click on the
product where it was missed (its mask is previewed at once), shift+click on a lookalike,
undo and clear. "Re-run product" submits the product with its corrections and follows
the new job until it ends.
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>prodseg review {{catalog}}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; display: flex; height: 100vh; }
#side { width: 380px; overflow: auto; border-right: 1px solid #ccc; padding: 8px; }
#main { flex: 1; overflow: auto; padding: 8px 16px; }
#filters button { margin-right: 4px; }
#filters button.on { background: #246; color: #fff; }
#search { width: 100%; margin: 6px 0; box-sizing: border-box; }
table { border-collapse: collapse; width: 100%; }
td { border-bottom: 1px solid #eee; padding: 3px 4px; vertical-align: top; }
tr.product { cursor: pointer; }
tr.product.flagged td:first-child { border-left: 4px solid #e80; }
tr.product.open { background: #def; }
.reasons { color: #a50; font-size: 12px; }
.who { color: #276; font-size: 12px; }
#views { display: flex; flex-wrap: wrap; gap: 12px; }
.view { border: 2px solid #ccc; padding: 4px; width: 340px; }
.view.accept { border-color: #2a4; } .view.reject { border-color: #d33; }
.view.isref { border-color: #06e; }
.stage { position: relative; width: 100%; cursor: crosshair; user-select: none; }
.stage img { width: 100%; display: block; }
.stage img.layer { position: absolute; left: 0; top: 0; pointer-events: none; }
.box { position: absolute; border: 2px solid #1c5; pointer-events: none; }
.box span { position: absolute; top: -16px; left: -2px; background: #1c5; color: #fff;
            font-size: 11px; padding: 0 3px; }
.dot { position: absolute; width: 10px; height: 10px; margin: -5px; border-radius: 50%;
       border: 2px solid #fff; pointer-events: none; }
.dot.point { background: #0c0; } .dot.lookalike { background: #f80; }
.badge { display: inline-block; font-size: 11px; padding: 0 4px; margin-left: 4px;
         color: #fff; border-radius: 3px; }
.badge.ref { background: #06e; } .badge.bank { background: #708; }
.badge.accept { background: #2a4; } .badge.reject { background: #d33; }
.caption { display: flex; justify-content: space-between; margin: 3px 0; }
.preview { font-size: 12px; color: #806; min-height: 1em; }
#status { margin: 6px 0; min-height: 1.2em; }
#status.error { color: #c00; }
</style></head>
<body>
<div id="side">
<h3>Catalog {{catalog}}</h3>
<div id="filters"><button data-filter="all">all</button><button data-filter="flagged"
class="on">flagged</button><button data-filter="reviewed">reviewed</button></div>
<input id="search" type="search" placeholder="product id">
<table><tbody id="products"></tbody></table>
</div>
<div id="main">
<div id="head"><p>Choose a product on the left. On a view: click the product where it was
missed, shift+click a lookalike; accept or reject each view; then re-run the product.</p></div>
<div id="status"></div>
<div id="views"></div>
</div>
<script>
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token") || "";
  var state = { filter: "flagged", products: [], open: null, detail: null, poll: null };
  var $ = function (id) { return document.getElementById(id); };

  function api(path, body) {
    var init = { headers: { "X-Prodseg-Token": token }, cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (t) {
        if (!r.ok) { throw new Error(t || r.statusText); }
        return JSON.parse(t);
      });
    });
  }
  function url(path) { return path + "?token=" + encodeURIComponent(token); }
  function say(text, bad) { var s = $("status"); s.textContent = text || "";
    s.className = bad ? "error" : ""; }
  function el(tag, cls, text) { var e = document.createElement(tag);
    if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; }
    return e; }
  function fail(e) { say(String(e.message || e), true); }

  function loadProducts() {
    return api("/api/products").then(function (doc) {
      state.products = doc.products; renderProducts();
    }).catch(fail);
  }
  function renderProducts() {
    var body = $("products"), q = $("search").value.trim().toLowerCase();
    body.textContent = "";
    state.products.forEach(function (p) {
      if (state.filter === "flagged" && !p.flagged) { return; }
      if (state.filter === "reviewed" && !p.reviewed_by) { return; }
      if (q && p.product.toLowerCase().indexOf(q) < 0) { return; }
      var tr = el("tr", "product" + (p.flagged ? " flagged" : "") +
                  (p.product === state.open ? " open" : ""));
      tr.dataset.product = p.product;
      var td = el("td"); td.appendChild(el("b", "", p.product));
      td.appendChild(el("div", "", p.state + ", matched " + p.matched + " of " + p.views +
                        (p.runs ? ", re-run " + p.runs + "x" : "")));
      if (p.reasons.length) { td.appendChild(el("div", "reasons", p.reasons.join("; "))); }
      if (p.reviewed_by) { td.appendChild(el("div", "who", "reviewed by " + p.reviewed_by +
                                             " at " + p.reviewed_at)); }
      tr.appendChild(td);
      tr.addEventListener("click", function () { openProduct(p.product); });
      body.appendChild(tr);
    });
  }

  function openProduct(product) {
    state.open = product; renderProducts(); say("loading " + product + " ...");
    return api("/api/product/" + encodeURIComponent(product)).then(function (d) {
      state.detail = d; renderProduct(); follow();
    }).catch(function (e) {
      if (state.open !== product) { return; }
      // Nothing of the product shown before stays on screen, nor its buttons.
      if (state.poll) { clearTimeout(state.poll); state.poll = null; }
      state.detail = null; $("head").textContent = ""; $("views").textContent = "";
      var h = el("h2", "", product); h.id = "refused"; $("head").appendChild(h);
      fail(e);
    });
  }
  function follow() {
    if (state.poll) { clearTimeout(state.poll); state.poll = null; }
    var d = state.detail;
    if (d && ["queued", "running", "unknown"].indexOf(d.state) >= 0) {
      state.poll = setTimeout(function () {
        openProduct(d.product).then(loadProducts); }, 1000);
    }
  }
  function decisionOf(view) {
    var v = (state.detail.review.views || {})[view];
    return v && v.job === state.detail.job ? v : { decision: null, points: [], lookalikes: [] };
  }

  function renderProduct() {
    var d = state.detail, head = $("head"), views = $("views");
    head.textContent = ""; views.textContent = "";
    var h = el("h2", "", d.product); head.appendChild(h);
    var line = el("p", "", "job " + d.job + ": " + d.state +
                  (d.state === "done" ? "" : " (" + d.finished + "/" + d.total + ")") +
                  (d.message ? " - " + d.message : "") +
                  (d.runs ? "; re-run " + d.runs + "x" : ""));
    line.id = "jobline"; line.dataset.state = d.state; line.dataset.job = d.job;
    head.appendChild(line);
    var rerun = el("button", "", "Re-run product"); rerun.id = "rerun";
    rerun.disabled = d.state !== "done";
    rerun.addEventListener("click", function () {
      rerun.disabled = true; say("submitting " + d.product + " again ...");
      api("/api/product/" + encodeURIComponent(d.product) + "/rerun", {}).then(function (r) {
        say("re-running as job " + r.job); return openProduct(d.product);
      }).then(loadProducts).catch(fail);
    });
    head.appendChild(rerun);
    say(d.state === "done" ? "" : "the job is " + d.state);
    d.views.forEach(function (v) { views.appendChild(viewCard(d, v)); });
  }

  function viewCard(d, v) {
    var dec = decisionOf(v.image);
    var card = el("div", "view" + (v.reference ? " isref" : "") +
                  (dec.decision ? " " + dec.decision : ""));
    card.dataset.view = v.image; card.dataset.decision = dec.decision || "";
    var cap = el("div", "caption"), name = el("span", "", v.image);
    if (v.reference) { name.appendChild(el("span", "badge ref", "reference")); }
    if (v.bank && !v.reference) { name.appendChild(el("span", "badge bank", "bank")); }
    if (dec.decision) { name.appendChild(el("span", "badge " + dec.decision, dec.decision)); }
    cap.appendChild(name);
    cap.appendChild(el("span", "score", v.status !== "ok" ? "error" : v.matches.length ?
                       "score " + v.matches[0].score.toFixed(3) : "no match"));
    card.appendChild(cap);
    if (v.status !== "ok") { card.appendChild(el("div", "", v.error || "")); return card; }
    var stage = el("div", "stage"), base = "/api/product/" + encodeURIComponent(d.product) +
        "/view/" + encodeURIComponent(v.image);
    var photo = el("img", "photo"); photo.src = url(base + "/image"); photo.alt = v.image;
    var over = el("img", "layer overlay"); over.src = url(base + "/overlay"); over.alt = "";
    var prev = el("img", "layer previewmask"); prev.alt = ""; prev.hidden = true;
    stage.appendChild(photo); stage.appendChild(over); stage.appendChild(prev);
    v.matches.forEach(function (m, k) {
      var b = el("div", "box"), W = v.width, H = v.height;
      b.style.left = (100 * m.bbox[0] / W) + "%"; b.style.top = (100 * m.bbox[1] / H) + "%";
      b.style.width = (100 * (m.bbox[2] - m.bbox[0]) / W) + "%";
      b.style.height = (100 * (m.bbox[3] - m.bbox[1]) / H) + "%";
      b.appendChild(el("span", "", (v.reference ? "REF " : "#" + (k + 1) + " ") +
                       m.score.toFixed(3)));
      stage.appendChild(b);
    });
    [["point", dec.points], ["lookalike", dec.lookalikes]].forEach(function (pair) {
      pair[1].forEach(function (p) {
        var dot = el("div", "dot " + pair[0]);
        dot.style.left = (100 * p[0] / v.width) + "%";
        dot.style.top = (100 * p[1] / v.height) + "%";
        stage.appendChild(dot);
      });
    });
    var info = el("div", "preview");
    stage.addEventListener("click", function (e) {
      if (v.reference) { say("the reference is the product already"); return; }
      var r = photo.getBoundingClientRect();
      var x = Math.round((e.clientX - r.left) * v.width / r.width);
      var y = Math.round((e.clientY - r.top) * v.height / r.height);
      var kind = e.shiftKey ? "lookalike" : "point";
      change(v.image, { action: kind, x: x, y: y }).then(function (review) {
        if (kind !== "point") { return; }
        var pts = review.views[v.image].points;
        info.textContent = "segmenting ...";
        return api("/api/product/" + encodeURIComponent(d.product) + "/preview",
                   { view: v.image, points: pts }).then(function (p) {
          var c = cardOf(v.image); var img = c.querySelector("img.previewmask");
          img.src = p.mask; img.hidden = false;
          c.querySelector(".preview").textContent = "preview: score " + p.score.toFixed(3) +
            ", " + p.area + " px, " + p.seconds.toFixed(2) + " s";
          c.dataset.previewed = "1";
        });
      }).catch(fail);
    });
    card.appendChild(stage);
    card.appendChild(info);
    if (v.reference && (dec.decision || dec.points.length || dec.lookalikes.length)) {
      // Stored before the server refused such changes: the card can still clear them.
      var clear = el("button", "clear", "clear");
      clear.addEventListener("click", function () {
        change(v.image, { action: "clear" }).catch(fail); });
      var refbar = el("div", "actions"); refbar.appendChild(clear); card.appendChild(refbar);
    }
    if (!v.reference) {
      var bar = el("div", "actions");
      [["accept", "accept"], ["reject", "reject: not the product"], ["undo", "undo click"],
       ["clear", "clear"]].forEach(function (a) {
        var btn = el("button", a[0], a[1]);
        btn.addEventListener("click", function () {
          var body = { action: a[0] === "undo" ? "undo" : a[0] };
          if (a[0] === "accept" && dec.decision === "accept") { body.action = "undecide"; }
          if (a[0] === "reject" && dec.decision === "reject") { body.action = "undecide"; }
          change(v.image, body).catch(fail);
        });
        bar.appendChild(btn);
      });
      card.appendChild(bar);
    }
    return card;
  }
  function cardOf(view) {
    var found = null;
    document.querySelectorAll("#views .view").forEach(function (c) {
      if (c.dataset.view === view) { found = c; } });
    return found;
  }
  function change(view, body) {
    var d = state.detail;
    body.view = view; body.job = d.job;
    return api("/api/product/" + encodeURIComponent(d.product) + "/change", body)
      .then(function (review) {
        var keep = {};
        document.querySelectorAll("#views .view").forEach(function (c) {
          var img = c.querySelector("img.previewmask");
          if (img && !img.hidden) { keep[c.dataset.view] = [img.src,
            c.querySelector(".preview").textContent]; }
        });
        d.review = review; renderProduct();
        Object.keys(keep).forEach(function (k) {
          var c = cardOf(k); if (!c) { return; }
          var img = c.querySelector("img.previewmask");
          img.src = keep[k][0]; img.hidden = false;
          c.querySelector(".preview").textContent = keep[k][1]; c.dataset.previewed = "1";
        });
        loadProducts();
        return review;
      });
  }

  document.querySelectorAll("#filters button").forEach(function (b) {
    b.addEventListener("click", function () {
      state.filter = b.dataset.filter;
      document.querySelectorAll("#filters button").forEach(function (o) {
        o.className = o === b ? "on" : ""; });
      renderProducts();
    });
  });
  $("search").addEventListener("input", renderProducts);
  loadProducts();
})();
</script>
</body></html>
"""
