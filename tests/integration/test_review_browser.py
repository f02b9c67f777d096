"""The review loop in headless Chromium, against Valkey, SeaweedFS and a
``prodseg worker``: a flagged product is opened, a wrong view rejected, the product clicked
on a missed view (its mask previewed by the worker), and the product re-run. The new job
used both corrections; the report shows the product as reviewed; the export holds the
accepted results. The page asked nothing of any address but 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.browser import (
    chromium,
    console_errors,
    full_page_png,
    redrawn_page_wait,
    requested_urls,
)
from tests.support.cluster import Cluster, wait_for
from tests.support.outcomes import artifacts_dir

pytestmark = pytest.mark.integration
WAIT_S = 120.0


def _scene(folder: Path) -> tuple[tuple[int, int], dict[str, np.ndarray]]:
    """An 8-view spin of a carton and a shelf photo with a greener copy of it (a lookalike,
    not the product), as PNGs; the click on the reference and each view's true mask."""
    from prodseg.producer.samples.scene import render_spin_set

    spin = render_spin_set(n_views=8, height=240, width=320, n_distractor_only=1, seed=0)
    (folder / "images").mkdir(parents=True)
    front, truth = spin.views[0], {}
    for i, view in enumerate(spin.views):
        image, name = view.image.copy(), f"view_{i:03d}" if i < 8 else "shelf_000"
        if i == 8:
            ys, xs = np.nonzero(front.mask)
            tinted = front.image.astype(np.float32)
            tinted[..., 1] *= 0.85
            image[ys, xs] = tinted[ys, xs].astype(np.uint8)
        Image.fromarray(image).save(folder / "images" / f"{name}.png")
        truth[name] = view.mask if i < 8 else np.zeros_like(view.mask)
    return spin.reference_point, truth


def _inside(mask: np.ndarray) -> tuple[int, int]:
    """A pixel well inside a mask: the middle of its middle row."""
    ys, xs = np.nonzero(mask)
    y = int(np.median(ys))
    return int(np.median(xs[ys == y])), y


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_review_reject_click_rerun_report_and_export(cluster: Cluster) -> None:
    (x, y), truth = _scene(cluster.tmp / "milk")
    catalog_file = cluster.tmp / "shelf.csv"
    catalog_file.write_text("product_id,images,reference,point\n"
                            f'milk,milk/images,milk/images/view_000.png,"{x},{y}"\n')
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    done = cluster.cli("catalog", "submit", str(catalog_file), "--watch", "--no-progress",
                       "--backend", "classic")
    assert done.returncode == 0, done.stderr + done.stdout
    catalog = done.stdout.splitlines()[0].strip()
    first = json.loads(cluster.store.get(f"jobs/{catalog}-milk/results.json"))
    by_view = {e["image"]: e for e in first["images"]}
    assert by_view["shelf_000"]["matches"], "the lookalike should fool the first job"
    missed = "view_004"
    assert not by_view[missed]["matches"], "the back of the carton should be missed"

    review = subprocess.Popen(
        [sys.executable, "-m", "prodseg", "catalog", "review", catalog, "--reviewer", "ana"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env,
        start_new_session=True)
    try:
        url = review.stdout.readline().strip() if review.stdout else ""
        assert url.startswith("http://127.0.0.1:") and "?token=" in url, url
        _drive_the_page(url, catalog, missed, truth)
    finally:
        review.terminate()
        review.wait(timeout=30)
    assert "token=" not in (review.stderr.read() if review.stderr else "")

    jobs = sorted({k.split("/")[1] for k in cluster.store.list("jobs/")})
    assert jobs == [f"{catalog}-milk", f"{catalog}-milk-r1"]  # the first result is kept
    wait_for(lambda: cluster.store.exists(f"jobs/{catalog}-milk-r1/results.json"), WAIT_S,
             "the re-run's results")
    rerun = json.loads(cluster.store.get(f"jobs/{catalog}-milk-r1/results.json"))
    after = {e["image"]: e for e in rerun["images"]}
    assert after["shelf_000"]["matches"] == [] and after["shelf_000"]["found_by"] == "not here"
    clicked = after[missed]
    assert clicked["found_by"] == "reference" and len(clicked["matches"]) == 1
    mask = np.asarray(Image.open(io.BytesIO(cluster.store.get(
        f"jobs/{catalog}-milk-r1/{clicked['matches'][0]['mask']}")))) > 0
    iou = _iou(mask, truth[missed])
    assert iou >= 0.9, iou
    assert missed in rerun["prototype_bank"]["prototypes"]

    report_dir = cluster.tmp / "report"
    report = cluster.cli("catalog", "report", catalog, "-o", str(report_dir))
    assert report.returncode == 0, report.stderr
    (row,) = csv.DictReader(io.StringIO((report_dir / "report.csv").read_text()))
    assert row["job"] == f"{catalog}-milk-r1" and row["state"] == "done"
    assert row["reviewed"] == "yes" and row["reviewed_by"] == "ana" and row["runs"] == "1"
    assert row["reviewed_at"].endswith("Z")

    # Only accepted results are exported: here two views accepted on the newest run.
    from prodseg.producer.catalog.reviews import Change, ReviewBook

    book = ReviewBook(cluster.store, catalog)
    for view, action in ((missed, "accept"), ("view_001", "accept"), ("view_002", "reject")):
        book.change("milk", Change(view, action, f"{catalog}-milk-r1"), "ben")
    for fmt in ("coco", "yolo-seg"):
        out = cluster.tmp / fmt
        exported = cluster.cli("catalog", "export", catalog, "--format", fmt, "-o", str(out))
        assert exported.returncode == 0, exported.stderr
        assert "coco: 1 products, 3 images" in exported.stdout or fmt != "coco"
        images = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.*"))
        assert images == ["images/milk/view_000.png", "images/milk/view_001.png",
                          f"images/milk/{missed}.png"]
    doc = json.loads((cluster.tmp / "coco" / "annotations.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["milk"]
    assert len(doc["annotations"]) == 3 and {a["category_id"] for a in doc["annotations"]} == {1}
    labels = sorted((cluster.tmp / "yolo-seg" / "labels" / "milk").glob("*.txt"))
    assert [p.stem for p in labels] == ["view_000", "view_001", missed]
    assert all(p.read_text().startswith("0 ") for p in labels)
    assert "nc: 1" in (cluster.tmp / "yolo-seg" / "data.yaml").read_text()
    spins = cluster.tmp / "spin"
    exported = cluster.cli("catalog", "export", catalog, "--format", "spin", "-o", str(spins),
                           "--size", "64")
    assert exported.returncode == 0, exported.stderr
    spin = json.loads((spins / "milk" / "spin.json").read_text())
    assert [f["view"] for f in spin["frames"]] == sorted(["view_000", "view_001", missed])
    assert spin["left_out"]["view_002"] == "not accepted"


def _drive_the_page(url: str, catalog: str, missed: str, truth: dict[str, np.ndarray]) -> None:
    browser = chromium()
    driver = next(browser)
    try:
        _steps(driver, url, catalog, missed, truth)
    finally:
        browser.close()


def _steps(driver, url: str, catalog: str, missed: str, truth: dict[str, np.ndarray]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get_log("performance")
    driver.get(url)
    wait = redrawn_page_wait(driver, WAIT_S)
    row = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-product="milk"]'))
    assert "flagged" in (row.get_attribute("class") or "") and "matched" in row.text
    row.click()

    def card(view: str):
        return wait.until(lambda d: d.find_element(
            By.CSS_SELECTOR, f'#views .view[data-view="{view}"]'))

    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#views .view img.photo"))
    assert "reference" in card("view_000").text
    card("shelf_000").find_element(By.CSS_SELECTOR, "button.reject").click()
    wait.until(lambda d: card("shelf_000").get_attribute("data-decision") == "reject")

    photo = card(missed).find_element(By.CSS_SELECTOR, "img.photo")
    wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", photo) > 0)
    px, py = _inside(truth[missed])
    # Whole in the window: WebDriver offsets are from the centre of an element's visible part.
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", photo)
    size = photo.size
    height, width = truth[missed].shape
    dx = px * size["width"] / width - size["width"] / 2
    dy = py * size["height"] / height - size["height"] / 2
    ActionChains(driver).move_to_element_with_offset(photo, round(dx), round(dy)).click() \
        .perform()
    wait.until(lambda d: card(missed).get_attribute("data-previewed") == "1")
    assert "preview: score" in card(missed).text

    full_page_png(driver, artifacts_dir() / "review-chromium.png")
    driver.find_element(By.ID, "rerun").click()
    wait.until(lambda d: d.find_element(By.ID, "jobline").get_attribute("data-job")
               == f"{catalog}-milk-r1")
    wait.until(lambda d: d.find_element(By.ID, "jobline").get_attribute("data-state")
               == "done")
    wait.until(lambda d: "reference" in card(missed).text)
    time.sleep(0.5)
    assert console_errors(driver) == []
    urls = requested_urls(driver)
    assert urls and all(u.startswith(("http://127.0.0.1:", "data:")) for u in urls), urls
