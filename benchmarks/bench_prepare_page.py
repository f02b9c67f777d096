"""How fast the prepare page opens on a large catalog, and whether memory stays flat while
the operator goes through it.

Writes a prepared catalog of N products (3 rendered views each, JPEG, hard links of a
few files, every product already proposed), starts the real ``prodseg catalog prepare
FILE -o FILE --review --propose local --preview local --backend classic``, and opens its
page in headless Chromium: the seconds from navigation to the first product drawn with
its photo and thumbnails, then the server's resident memory and the page's JavaScript
heap every STEP products while the arrow key goes through them (each product's photo,
thumbnails and preview loaded before the next). The page counts as open when the first
product's photo and thumbnails are drawn; the seconds until its preview mask is drawn too
(the first preview builds the segmenter) are printed beside.

    python benchmarks/bench_prepare_page.py --products 5000 --browse 500 --step 100
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent


def write_catalog(folder: Path, products: int, size: tuple[int, int]) -> Path:
    """``products`` product folders of 3 views (hard links of 6 rendered JPEGs) and the
    prepared catalog file naming them, with a proposal each."""
    from PIL import Image

    from prodseg.producer.samples.scene import render_spin_set

    height, width = size
    spin = render_spin_set(n_views=6, height=height, width=width, n_distractor_only=0, seed=0)
    rendered = []
    for k, view in enumerate(spin.views):
        path = folder / "_rendered" / f"{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(view.image).save(path, quality=90)
        rendered.append(path)
    x, y = spin.reference_point
    lines = ["product_id,images,reference,point,prompt_source,prompt_confidence"]
    for k in range(products):
        product = f"p{k:05d}"
        (folder / product).mkdir()
        for i in range(3):
            os.link(rendered[(k + i) % len(rendered)], folder / product / f"view_{i}.jpg")
        lines.append(f'{product},{product},{product}/view_0.jpg,"{x},{y}",proposed,0.9')
    path = folder / "shelf.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def rss_mib(pid: int) -> float:
    """A process's resident memory, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--browse", type=int, default=600, help="products gone through")
    parser.add_argument("--step", type=int, default=100, help="memory read every STEP")
    parser.add_argument("--size", default="480x640", help="HxW of each photo")
    parser.add_argument("--screenshot", type=Path, metavar="JPG",
                        help="also save the page, as first opened, as a JPEG")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.browser import chromium

    height, width = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_catalog(Path(tmp), args.products, (height, width))
        print(f"catalog of {args.products} products written in "
              f"{time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "prodseg", "catalog", "prepare", str(path), "-o",
             str(path), "--review", "--propose", "local", "--preview", "local",
             "--no-progress", "--backend", "classic"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            url = ""
            while proc.stdout and not url.startswith("http") and proc.poll() is None:
                url = proc.stdout.readline().strip()  # after the proposing step's summary
            started = time.perf_counter() - start
            browser = cast(Generator[Any, None, None], chromium())
            driver = next(browser)
            try:
                result = _browse(driver, url, proc.pid, args)
            finally:
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    result.update(products=args.products, command_start_s=round(started, 3),
                  size=args.size)
    print(f"command up (URL printed) after {started:.2f} s")
    print(f"page open (first product, its photo and thumbnails drawn): "
          f"{result['open_s']:.3f} s; its preview mask drawn: {result['first_preview_s']:.3f} s"
          " (the first builds the segmenter)")
    print(f"{'products seen':>13} {'server RSS MiB':>15} {'page JS heap MiB':>17}")
    for seen, rss, heap in result["memory"]:
        print(f"{seen:>13} {rss:>15.1f} {heap:>17.1f}")
    print(f"per product while browsing: {result['per_product_s']:.3f} s")
    print(json.dumps({"bench": "prepare_page", **result}))


def _browse(driver: Any, url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 60, poll_frequency=0.01)
    shown = ("var p = document.getElementById('product'), f = document.getElementById('photo');"
             " var t = document.querySelectorAll('#thumbs img');"
             " return p.dataset.ready === '1' && f.complete &&"
             " f.naturalWidth > 0 && t.length > 0 && Array.prototype.every.call(t,"
             " function (i) { return i.complete && i.naturalWidth > 0; }) ? p.dataset.index"
             " : null;")
    drawn = shown.replace("p.dataset.ready === '1' &&",
                          "p.dataset.ready === '1' && p.dataset.previewed === '1' &&")
    start = time.perf_counter()
    driver.get(url)
    wait.until(lambda d: d.execute_script(shown) is not None)
    opened = time.perf_counter() - start
    wait.until(lambda d: d.execute_script(drawn) is not None)
    previewed = time.perf_counter() - start
    if args.screenshot is not None:
        _screenshot(driver, args.screenshot)
    driver.execute_cdp_cmd("Performance.enable", {})

    def heap_mib() -> float:
        metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize") / 2**20

    memory = [(0, rss_mib(pid), heap_mib())]
    start = time.perf_counter()
    for seen in range(1, args.browse + 1):
        ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()

        def arrived(d: Any, index: str = str(seen)) -> bool:
            return bool(d.execute_script(drawn) == index)

        wait.until(arrived)
        if seen % args.step == 0:
            driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
            memory.append((seen, rss_mib(pid), heap_mib()))
    per_product = (time.perf_counter() - start) / max(1, args.browse)
    return {"open_s": round(opened, 3), "first_preview_s": round(previewed, 3),
            "per_product_s": round(per_product, 4),
            "memory": [(s, round(r, 1), round(h, 2)) for s, r, h in memory]}


def _screenshot(driver: Any, path: Path) -> None:
    """The page as the browser draws it, as a JPEG (the docs' picture)."""
    from PIL import Image

    from tests.support.browser import full_page_png

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "page.png"
        full_page_png(driver, png)
        Image.open(png).convert("RGB").save(path, quality=80, optimize=True)


if __name__ == "__main__":
    main()
