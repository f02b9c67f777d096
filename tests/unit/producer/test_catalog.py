"""Store catalogs: CSV and JSON Lines files of products, every row problem reported."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from prodseg.errors import InputError
from prodseg.producer.catalog.file import Catalog, RowProblem, catalog_id, read_catalog
from prodseg.producer.catalog.row import CatalogProduct
from prodseg.prompts import Prompt

HEADER = "product_id,images,reference,point,neg_point,box"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-product settings are validated on top of the environment: keep it neutral."""
    for name in list(os.environ):
        if name.startswith("PRODSEG_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def problems(catalog: Catalog) -> list[tuple[int, str | None, str]]:
    return [(p.line, p.product_id, p.message) for p in catalog.problems]


def only_problem(path: Path) -> RowProblem:
    catalog = read_catalog(path)
    assert catalog.products == ()
    assert len(catalog.problems) == 1, catalog.problems
    return catalog.problems[0]


CSV_TEXT = (
    "product_id,images,reference,point,neg_point,box,settings,setting.top_k_matches,notes\n"
    'milk-1l,milk/*.jpg,milk/ref.jpg,"250,300",,,"{""similarity_threshold"": 0.7}",,fresh\n'
    'soap_2.v1,s3://shots/soap/;extra/a.png|extra/b.png,s3://shots/soap/ref.jpg,'
    '"10,20;30.5,40","5,6","1,2,300,400",,5,\n'
)
JSONL_TEXT = (
    '{"product_id": "milk-1l", "images": "milk/*.jpg", "reference": "milk/ref.jpg", '
    '"point": [250, 300], "settings": {"similarity_threshold": 0.7}, "notes": "fresh"}\n'
    "\n"
    '{"product_id": "soap_2.v1", "images": ["s3://shots/soap/", "extra/a.png", '
    '"extra/b.png"], "reference": "s3://shots/soap/ref.jpg", "point": [[10, 20], [30.5, 40]], '
    '"neg_point": "5,6", "box": [1, 2, 300, 400], "setting.top_k_matches": "5"}\n'
)


def expected_products(base: Path, lines: tuple[int, int]) -> tuple[CatalogProduct, ...]:
    return (
        CatalogProduct(
            line=lines[0], product_id="milk-1l", images=(str(base / "milk/*.jpg"),),
            reference=str(base / "milk/ref.jpg"), prompt=Prompt.from_point(250, 300),
            settings={"similarity_threshold": 0.7},
        ),
        CatalogProduct(
            line=lines[1], product_id="soap_2.v1",
            images=("s3://shots/soap/", str(base / "extra/a.png"), str(base / "extra/b.png")),
            reference="s3://shots/soap/ref.jpg",
            prompt=Prompt(points=((10.0, 20.0), (30.5, 40.0), (5.0, 6.0)), labels=(1, 1, 0),
                          box=(1.0, 2.0, 300.0, 400.0)),
            settings={"top_k_matches": 5},
        ),
    )


def test_csv_and_jsonl_give_the_same_products(tmp_path: Path) -> None:
    csv_cat = read_catalog(write(tmp_path / "cat.csv", CSV_TEXT))
    json_cat = read_catalog(write(tmp_path / "cat.jsonl", JSONL_TEXT))
    assert csv_cat.problems == () and json_cat.problems == ()
    assert csv_cat.products == expected_products(tmp_path, (2, 3))
    assert json_cat.products == expected_products(tmp_path, (1, 3))
    assert catalog_id(csv_cat.products) == catalog_id(json_cat.products)
    csv_cat.raise_if_invalid()  # nothing to report


def test_ndjson_suffix_and_upper_case_suffix(tmp_path: Path) -> None:
    assert len(read_catalog(write(tmp_path / "cat.ndjson", JSONL_TEXT)).products) == 2
    assert len(read_catalog(write(tmp_path / "CAT.CSV", CSV_TEXT)).products) == 2


def test_paths_resolve_against_the_catalog_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stores").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    write(tmp_path / "stores" / "c.csv",
          f"{HEADER}\np1,../photos/p1;/abs/p1/*.jpg,./p1/../ref.jpg,\"1,1\",,\n")
    product, = read_catalog(Path("../stores/c.csv")).products
    assert product.images == (str(tmp_path / "photos/p1"), "/abs/p1/*.jpg")
    assert product.reference == str(tmp_path / "stores/ref.jpg")


def test_s3_sources_are_kept_and_checked(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        f"{HEADER}\n"
        'a,s3://bucket/shots/a/,s3://bucket/shots/a/ref.jpg,"1,1",,\n'
        'b,s3://Bad_Bucket/x,s3://bucket/r.jpg,"1,1",,\n'
        'c,s3://bucket/c,s3://bucket/c/,"1,1",,\n'
        'd,http://example.com/d.jpg,r.jpg,"1,1",,\n'
        'e,e/,e/*.jpg,"1,1",,\n'
    )))
    assert [p.product_id for p in cat.products] == ["a"]
    assert cat.products[0].images == ("s3://bucket/shots/a/",)
    assert cat.products[0].reference == "s3://bucket/shots/a/ref.jpg"
    msgs = {line: msg for line, _, msg in problems(cat)}
    assert sorted(msgs) == [3, 4, 5, 6]
    assert "'Bad_Bucket' is not a valid bucket name" in msgs[3]
    assert msgs[4] == "reference 's3://bucket/c/' is not one image; write s3://bucket/key"
    assert msgs[5] == ("images: 'http://example.com/d.jpg': only local paths and s3:// URLs "
                       "are supported")
    assert msgs[6] == "reference 'e/*.jpg' is not one image (a pattern or a list)"


def test_prompt_forms(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in [
        {"product_id": "box-only", "images": "i", "reference": "r.jpg", "box": "0,0,10,20"},
        {"product_id": "str-pts", "images": "i", "reference": "r.jpg", "point": "1,2; 3,4",
         "neg_point": [[5, 6], [7, 8]]},
        {"product_id": "strlist", "images": "i", "reference": "r.jpg", "point": ["1,2", "3,4"]},
    ])))
    assert cat.problems == ()
    assert [p.prompt for p in cat.products] == [
        Prompt.from_box(0, 0, 10, 20),
        Prompt(points=((1, 2), (3, 4), (5, 6), (7, 8)), labels=(1, 1, 0, 0)),
        Prompt(points=((1, 2), (3, 4)), labels=(1, 1)),
    ]


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (',"5,5",', "neg_point alone does not say which product is meant; add a point or a box"),
        ('"1,a",,', "point '1,a': 'a' is not a number; expected X,Y"),
        ('"1,2,3",,', "point '1,2,3': expected X,Y (2 numbers)"),
        ('"nan,5",,', "point 'nan,5': 'nan' is not a finite number"),
        ('"1,2;3,inf",,', "point '3,inf': 'inf' is not a finite number"),
        ('"-1,5",,', "point (-1, 5) has a negative coordinate; points are pixels from the "
                     "reference's top-left corner"),
        (',,"50,10,20,40"', "box (50, 10, 20, 40) is inverted or has zero area; write it as "
                            "X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0"),
        (',,"10,10,10,40"', "box (10, 10, 10, 40) is inverted or has zero area; write it as "
                            "X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0"),
        (',,"-50,-50,-10,-10"', "box (-50, -50, -10, -10) lies outside the image"),
        (',,"1,2,3"', "box '1,2,3': expected X0,Y0,X1,Y1 (4 numbers)"),
    ],
)
def test_bad_prompts(tmp_path: Path, cells: str, message: str) -> None:
    path = write(tmp_path / "c.csv", f"{HEADER}\nok,i,r.jpg,\"1,1\",,\nbad,i,r.jpg,{cells}\n")
    cat = read_catalog(path)
    assert [p.product_id for p in cat.products] == ["ok"]
    assert problems(cat) == [(3, "bad", message)]
    assert str(cat.problems[0]) == f"{path}:3 (bad): {message}"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"point": [1, True]}, "point [1, True]: True is not a number; expected X,Y"),
        ({"point": {"x": 1}}, "point {'x': 1}: expected X,Y (2 numbers)"),
        ({"box": [0, 0, 5, float("nan")]}, "box [0, 0, 5, nan]: nan is not a finite number"),
        ({"images": 5}, "images: expected a path, a glob, an s3:// URL or a list of them, "
                        "got 5"),
        ({"images": " ; "}, "images is missing"),
        ({"reference": ["a.jpg"]}, "reference: expected one image path or s3:// URL, "
                                   "got ['a.jpg']"),
        ({"settings": [1]}, "settings: expected a JSON object such as "
                            "{\"similarity_threshold\": 0.7}, got [1]"),
        ({"settings": "x"}, "settings: not a JSON object (Expecting value: line 1 column 1 "
                            "(char 0)); write it as {\"similarity_threshold\": 0.7} or use "
                            "setting.<name>"),
    ],
)
def test_bad_json_values(tmp_path: Path, row: dict[str, object], message: str) -> None:
    base = {"product_id": "p", "images": "i", "reference": "r.jpg", "point": [1, 1]}
    problem = only_problem(write(tmp_path / "c.jsonl", json.dumps({**base, **row})))
    assert (problem.line, problem.product_id, problem.message) == (1, "p", message)


@pytest.mark.parametrize("pid", [".hidden", "a/b", "milk 1l", "x" * 129, "", "é"])
def test_strict_product_ids(tmp_path: Path, pid: str) -> None:
    problem = only_problem(write(tmp_path / "c.jsonl", json.dumps(
        {"product_id": pid, "images": "i", "reference": "r.jpg", "point": [1, 1]})))
    assert problem.line == 1
    if pid:
        assert problem.message == (
            f"product_id {pid!r} is not valid: use 1-128 letters, digits, '-', '_' and '.', "
            "not starting with '.' (it becomes a storage key)")
    else:
        assert problem.message == "product_id is missing"


def test_longest_product_id_and_numeric_id(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.jsonl", "\n".join(json.dumps(
        {"product_id": pid, "images": "i", "reference": "r.jpg", "point": [1, 1]})
        for pid in ["x" * 128, 12345])))
    assert [p.product_id for p in cat.products] == ["x" * 128]
    assert problems(cat) == [(2, None, "product_id 12345 is not valid: use 1-128 letters, "
                              "digits, '-', '_' and '.', not starting with '.' (it becomes a "
                              "storage key)")]


def test_per_product_settings(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,settings,setting.similarity_threshold,"
        "setting.dinov2_model\n"
        'a,i,r.jpg,"1,1","{""top_k_matches"": 7, ""proposals"": ""guided""}",0.72,vit-s/14\n'
        'b,i,r.jpg,"1,1",,1.5,\n'
        'c,i,r.jpg,"1,1","{""simlarity_threshold"": 0.5}",,\n'
        'd,i,r.jpg,"1,1","{""similarity_threshold"": 0.5}",0.6,\n'
        'e,i,r.jpg,"1,1","{not json",,\n'
        'f,i,r.jpg,"1,1","{""min_mask_area_ratio"": 0.9, ""max_mask_area_ratio"": 0.5}",,\n'
    )))
    assert [(p.product_id, p.settings) for p in cat.products] == [
        ("a", {"similarity_threshold": 0.72, "dinov2_model": "vit_small_patch14_dinov2",
               "top_k_matches": 7, "proposals": "guided"}),
    ]
    msgs = {line: msg for line, _, msg in problems(cat)}
    assert sorted(msgs) == [3, 4, 5, 6, 7]
    assert msgs[3] == ("invalid setting similarity_threshold (PRODSEG_SIMILARITY_THRESHOLD / "
                       "--similarity-threshold) = '1.5': Input should be less than or equal "
                       "to 1")
    assert msgs[4] == ("unknown setting 'simlarity_threshold' (did you mean "
                       "'similarity_threshold'?)")
    assert msgs[5] == ("setting 'similarity_threshold' given twice (settings and "
                       "setting.<name>)")
    assert msgs[6].startswith("settings: not a JSON object (Expecting property name")
    assert "min_mask_area_ratio (0.9) must be below max_mask_area_ratio (0.5)" in msgs[7]


def test_lookalikes_and_capture_per_product(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,distractor_point,capture,setting.bank_size\n"
        'a,i,r.jpg,"1,1","20,30;40,50",Spin,4\n'
        'b,i,r.jpg,"1,1",,,\n'
        'c,i,r.jpg,"1,1","20",circle,\n'
        'd,i,r.jpg,"1,1","-1,3",,\n'
    )))
    a, b = cat.products
    assert a.distractors == ((20.0, 30.0), (40.0, 50.0))
    assert a.settings == {"capture": "spin", "bank_size": 4}
    assert "distractors" in a.to_json() and "distractors" not in b.to_json()
    assert b.distractors == () and b.settings == {}
    msgs = problems(cat)
    assert (4, "c", "distractor_point '20': expected X,Y (2 numbers)") in msgs
    assert (4, "c", "capture 'circle' is not one of auto, spin, unordered, panorama") in msgs
    assert [m for line, _, m in msgs if line == 5] == [
        "distractor_point (-1, 3) has a negative coordinate; points are pixels from the "
        "reference's top-left corner"]


def test_more_reference_views_and_views_not_here_per_product(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,ref,not_here\n"
        'a,i,r.jpg,"1,1","v2.jpg:10,20;v2.jpg:30,40;v5.jpg:1,2,50,60","shelf_0.jpg; v9.jpg"\n'
        'b,i,r.jpg,"1,1",v2.jpg:10,\n'
        'c,i,r.jpg,"1,1",v2.jpg:10:20,v2.jpg:1:1\n'
        'd,i,r.jpg,"1,1",v2.jpg:1:2,v2.jpg\n'
    )))
    (a,) = cat.products
    assert a.views == {
        "references": {"v2.jpg": {"points": [[10.0, 20.0], [30.0, 40.0]], "labels": [1, 1],
                                  "box": None},
                       "v5.jpg": {"points": [], "labels": [], "box": [1.0, 2.0, 50.0, 60.0]}},
        "no_match": ["shelf_0.jpg", "v9.jpg"], "lookalikes": {}}
    assert a.to_json()["views"] == a.views
    msgs = problems(cat)
    assert (3, "b", "ref 'v2.jpg:10': expected VIEW:X,Y or VIEW:X0,Y0,X1,Y1") in msgs
    assert (4, "c", "ref 'v2.jpg:10:20': expected VIEW:X,Y or VIEW:X0,Y0,X1,Y1") in msgs
    assert (5, "d", "ref 'v2.jpg:1:2': expected VIEW:X,Y or VIEW:X0,Y0,X1,Y1") in msgs


def test_a_view_is_not_both_a_reference_and_not_here(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,ref,not_here\n"
        'a,i,r.jpg,"1,1","v2.jpg:10,20",v2.jpg\n')))
    assert problems(cat) == [(2, "a", "view 'v2.jpg' is both a reference (ref) and not_here")]


def test_machine_settings_are_refused(tmp_path: Path) -> None:
    row = {"product_id": "p", "images": "i", "reference": "r.jpg", "point": [1, 1],
           "settings": {"device": "cuda:1", "s3_bucket": "other"}}
    problem = only_problem(write(tmp_path / "c.jsonl", json.dumps(row)))
    assert problem.message == (
        "setting 'device', 's3_bucket' belongs to the machine that runs the jobs, not to a "
        "product; set it on the workers (PRODSEG_<NAME>)")
    path = write(tmp_path / "c.csv", f"{HEADER},setting.broker_url\n")
    with pytest.raises(InputError) as err:
        read_catalog(path)
    assert str(err.value) == (
        f"{path}:1: column setting 'broker_url' belongs to the machine that runs the jobs, "
        "not to a product; set it on the workers (PRODSEG_<NAME>)")


def test_unknown_columns_and_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "product_id,images,refrence,point,setting.seeed\n")
    with pytest.raises(InputError) as err:
        read_catalog(path)
    assert str(err.value) == (
        f"{path}:1: unknown column 'refrence' (did you mean 'reference'?); the columns are "
        "product_id, images, reference, point, neg_point, box, prompt_source, "
        "prompt_confidence, distractor_point, ref, "
        "not_here, capture, settings, catalog, setting.<name>, note, #...")
    path = write(tmp_path / "d.csv", "product_id,images,reference,point,setting.seeed\n")
    with pytest.raises(InputError, match=r"d.csv:1: column unknown setting 'seeed' \(did you "
                       r"mean 'seed'\?\)"):
        read_catalog(path)
    row = {"product_id": "p", "images": "i", "refrence": "r.jpg", "point": [1, 1], "x": 1}
    cat = read_catalog(write(tmp_path / "c.jsonl", json.dumps(row)))
    assert problems(cat) == [
        (1, "p", "unknown key 'refrence', 'x' (did you mean 'reference'?); the keys are "
                 "product_id, images, reference, point, neg_point, box, prompt_source, "
                 "prompt_confidence, distractor_point, ref, not_here, capture, settings, catalog, "
                 "note, #..."),
        (1, "p", "reference is missing"),
    ]


def test_notes_and_comment_columns_are_free_text(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "# shelf,product_id,note,images,reference,point,notes,\n"
        'A3,p1,"anything, even ""quotes""",i,r.jpg,"1,1",more,\n')))
    assert [p.product_id for p in cat.products] == ["p1"]
    assert cat.problems == ()


def test_duplicate_product_ids_name_every_line(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        f"{HEADER}\n"
        'milk,i,r.jpg,"1,1",,\n'
        'soap,i,r.jpg,"1,1",,\n'
        'milk,j,r.jpg,"2,2",,\n'
        'milk,k,r.jpg,,,\n'
    )))
    assert [p.product_id for p in cat.products] == ["soap"]
    dup = "product_id 'milk' is on lines 2, 4, 5; each product needs its own id"
    assert problems(cat) == [
        (2, "milk", dup), (4, "milk", dup),
        (5, "milk", dup),
    ]


FOUR_BAD = (
    "product_id,images,reference,point,box,notes\n"      # 1
    'ok-1,i,r.jpg,"1,1",,\n'                              # 2
    'bad-1,i,r.jpg,"1,a",,\n'                             # 3
    'ok-2,i,r.jpg,"1,1",,"a note\n'                       # 4
    'over three\n'                                        # 5
    'lines"\n'                                            # 6
    'bad-2,i,r.jpg,,"5,5,1,1",\n'                         # 7
    '\n'                                                  # 8
    ',,,,,\n'                                             # 9
    'bad-3,,r.jpg,"1,1",,\n'                              # 10
    'ok-3,i,r.jpg,"1,1",,"two\n'                          # 11
    'lines"\n'                                            # 12
    '.bad-4,i,r.jpg,"1,1",,\n'                            # 13
)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_problem_is_collected_with_its_line(tmp_path: Path, newline: str) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", FOUR_BAD, newline))
    assert [(p.line, p.product_id) for p in cat.products] == [
        (2, "ok-1"), (4, "ok-2"), (11, "ok-3")]
    assert [(line, pid) for line, pid, _ in problems(cat)] == [
        (3, "bad-1"), (7, "bad-2"), (10, "bad-3"), (13, ".bad-4")]
    assert problems(cat)[2][2] == "images is missing"


def test_jsonl_lines_that_are_not_objects(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.jsonl", (
        '{"product_id": "a", "images": "i", "reference": "r.jpg", "point": [1, 1]}\n'
        "\n"
        '{"product_id": "b", "images": \n'
        '["not", "an", "object"]\n'
        '{"product_id": "c", "product_id": "d"}\n'
        '{"product_id": "e", "images": "i", "reference": "r.jpg", "box": [1, 1, 2, 2]}\n'
    ), "\r\n"))
    assert [(p.line, p.product_id) for p in cat.products] == [(1, "a"), (6, "e")]
    assert problems(cat) == [
        (3, None, "not valid JSON: Expecting value (column 32)"),
        (4, None, "expected a JSON object {...}, got list"),
        (5, None, "key 'product_id' given twice"),
    ]


def test_raise_if_invalid_lists_problems_and_the_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", FOUR_BAD)
    cat = read_catalog(path)
    with pytest.raises(InputError) as err:
        cat.raise_if_invalid()
    assert str(err.value) == (
        f"{path}: 4 problems in 4 rows:\n"
        f"  {path}:3 (bad-1): point '1,a': 'a' is not a number; expected X,Y\n"
        f"  {path}:7 (bad-2): box (5, 5, 1, 1) is inverted or has zero area; write it as "
        "X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0\n"
        f"  {path}:10 (bad-3): images is missing\n"
        f"  {path}:13 (.bad-4): product_id '.bad-4' is not valid: use 1-128 letters, digits, "
        "'-', '_' and '.', not starting with '.' (it becomes a storage key)\n"
        "fix them or pass --skip-invalid to submit only the 3 valid products")
    with pytest.raises(InputError) as err:
        cat.raise_if_invalid(limit=1)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}: 4 problems in 4 rows:"
    assert lines[1].startswith(f"  {path}:3 (bad-1): ")
    assert lines[2:] == ["  ... and 3 more",
                         "fix them or pass --skip-invalid to submit only the 3 valid products"]


def test_excel_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f'{HEADER}\r\nmilk,i,r.jpg,"1,1",,\r\n'.encode())
    product, = read_catalog(path).products
    assert (product.line, product.product_id, product.reference) == (
        2, "milk", str(tmp_path / "r.jpg"))
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"product_id": "m", "images": "i", '
                     b'"reference": "r.jpg", "point": "1,1"}\r\n')
    assert [p.product_id for p in read_catalog(path).products] == ["m"]


def test_file_level_errors(tmp_path: Path) -> None:
    def error(path: Path) -> str:
        with pytest.raises(InputError) as err:
            read_catalog(path)
        return str(err.value)

    missing = tmp_path / "nope.csv"
    assert error(missing) == f"{missing}: catalog file not found"
    (tmp_path / "dir.csv").mkdir()
    assert error(tmp_path / "dir.csv") == f"{tmp_path / 'dir.csv'}: is a directory, not a " \
                                          "catalog file"
    xlsx = write(tmp_path / "c.xlsx", "x")
    assert error(xlsx) == (f"{xlsx}: unknown catalog format '.xlsx'; use .csv (with a header "
                           "row), .jsonl or .ndjson (one JSON object per line)")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"{HEADER}\nok,i,r.jpg,\"1,1\",,\n".encode() + b"caf\xe9,i,r.jpg,,,\n")
    offset = len(HEADER) + 1 + len('ok,i,r.jpg,"1,1",,\n') + 3
    assert error(latin) == (f"{latin}:3: not UTF-8 text (byte 0xe9 at offset {offset}); save "
                            "the catalog as UTF-8 (in Excel: CSV UTF-8)")
    empty = write(tmp_path / "e.jsonl", "\n  \n")
    assert error(empty) == f"{empty}: the catalog is empty"
    header_only = write(tmp_path / "h.csv", HEADER + "\n\n")
    assert error(header_only) == f"{header_only}: no products in the catalog, only its header"
    no_id = write(tmp_path / "n.csv", "images,reference,point\ni,r.jpg,\"1,1\"\n")
    assert error(no_id) == (f"{no_id}:1: the header lacks the required column 'product_id' "
                            "(it has images, reference, point)")
    semi = write(tmp_path / "s.csv", "product_id;images;reference;point\n")
    assert error(semi) == (f"{semi}:1: the header looks ';'-separated (product_id;images;"
                           "reference;point); save the catalog as comma-separated CSV")
    twice = write(tmp_path / "t.csv", "product_id,images,reference,point,point\n")
    assert error(twice) == f"{twice}:1: column 'point' appears twice in the header"
    unclosed = write(tmp_path / "u.csv", f'{HEADER}\nok,i,r.jpg,"1,1,,\nnext,i,r.jpg,,,\n')
    assert error(unclosed) == f"{unclosed}:3: not valid CSV: unexpected end of data"


def test_rows_with_extra_values_or_unnamed_columns(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,\n"
        'a,i,r.jpg,"1,1",\n'
        'b,i,r.jpg,"1,1",x\n'
        'c,i,r.jpg,"1,1",,y\n'
        'd,i,r.jpg\n'
    )))
    assert [p.product_id for p in cat.products] == ["a", "d"]  # d: its prompt is proposed
    assert problems(cat) == [
        (3, "b", "a value in column 5, which has no name"),
        (4, "c", "6 values but the header has 5 columns"),
    ]


def test_catalog_id_is_stable_and_tracks_content(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", CSV_TEXT)
    first = catalog_id(read_catalog(path).products)
    assert re.fullmatch(r"cat-[0-9a-f]{12}", first)
    assert catalog_id(read_catalog(path).products) == first
    lines = CSV_TEXT.splitlines(keepends=True)
    reordered = write(tmp_path / "r.csv", lines[0] + lines[2] + "\n" + lines[1])
    assert catalog_id(read_catalog(reordered).products) == first
    changed = write(path, CSV_TEXT.replace('"250,300"', '"250,301"'))
    assert catalog_id(read_catalog(changed).products) != first
    noted = write(path, CSV_TEXT.replace("fresh", "stale"))
    assert catalog_id(read_catalog(noted).products) == first
    assert catalog_id([]) != first


def test_reading_a_catalog_never_imports_torch(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", CSV_TEXT)
    code = (f"import sys; from prodseg.producer.catalog.file import read_catalog; "
            f"c = read_catalog(__import__('pathlib').Path({str(path)!r})); "
            "assert len(c.products) == 2, c; "
            "heavy = [m for m in ('torch', 'sam2', 'timm') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_catalog_submitted_again_with_other_settings_is_refused() -> None:
    """The id follows the file, not the flags: other flags must not go on at the old ones."""
    from prodseg.producer.catalog.products import Product, resubmit_conflict

    def product(settings: dict[str, object]) -> Product:
        return Product("milk", "cat-1-milk", 2, ("/a.jpg",), "/a.jpg", {}, settings)

    stored = [product({"backend": "classic", "similarity_threshold": 0.7})]
    assert resubmit_conflict(stored, [product({"backend": "classic",
                                               "similarity_threshold": 0.7})]) is None
    conflict = resubmit_conflict(stored, [product({"backend": "classic",
                                                   "similarity_threshold": 0.6})])
    assert conflict == "milk: similarity_threshold 0.7 then, 0.6 now"
    conflict = resubmit_conflict(stored, [product({"similarity_threshold": 0.7})])
    assert conflict == "milk: backend classic then, unset now"


# -- where the prompt came from: prompt_source and prompt_confidence ---------------------


def test_prompt_source_defaults_and_rows_without_prompts(tmp_path: Path) -> None:
    cat = read_catalog(write(tmp_path / "c.csv", (
        "product_id,images,reference,point,box,prompt_source,prompt_confidence\n"
        'clicked,i,r.jpg,"1,1",,,\n'
        'typed,i,r.jpg,"1,1",,Clicked,\n'
        'prepared,i,r.jpg,"3,4",,proposed,0.83\n'
        'checked,i,r.jpg,,"1,2,30,40",confirmed,0.2\n'
        'bare,i,,,,,\n'
        'on-this-view,i,r.jpg,,,proposed,\n'
    )))
    assert cat.problems == ()
    got = {p.product_id: (p.prompt_source, p.prompt_confidence, p.to_propose)
           for p in cat.products}
    assert got == {"clicked": ("clicked", None, False), "typed": ("clicked", None, False),
                   "prepared": ("proposed", 0.83, False),
                   "checked": ("confirmed", 0.2, False),
                   "bare": ("proposed", None, True), "on-this-view": ("proposed", None, True)}
    bare = {p.product_id: p for p in cat.products}["bare"]
    assert bare.reference is None and bare.prompt is None
    assert bare.to_json()["prompt"] is None


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (',,clicked,', "prompt_source 'clicked' without a point or a box; give the prompt, or "
                       "leave both out to have it proposed"),
        (',,confirmed,', "prompt_source 'confirmed' without a point or a box; give the "
                         "prompt, or leave both out to have it proposed"),
        (',,proposed,0.4', "prompt_confidence without a point or a box; a proposal's "
                           "confidence comes with its prompt"),
        ('"1,1",,,0.4', "prompt_confidence on a clicked prompt; it belongs to a proposed or "
                        "confirmed one (prompt_source)"),
        ('"1,1",,propsed,', "prompt_source 'propsed' is not one of clicked, proposed, "
                            "confirmed (did you mean 'proposed'?)"),
        ('"1,1",,proposed,1.5', "prompt_confidence '1.5' is not in [0, 1]"),
        ('"1,1",,proposed,high', "prompt_confidence 'high': 'high' is not a number; expected "
                                 "a number in [0, 1]"),
    ],
)
def test_bad_prompt_provenance(tmp_path: Path, cells: str, message: str) -> None:
    header = "product_id,images,reference,point,box,prompt_source,prompt_confidence"
    problem = only_problem(write(tmp_path / "c.csv", f"{header}\nbad,i,r.jpg,{cells}\n"))
    assert (problem.line, problem.product_id, problem.message) == (2, "bad", message)


def test_a_prompt_needs_its_reference_and_lookalikes_need_a_prompt(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(row) for row in (
        {"product_id": "a", "images": "i", "point": [1, 1]},
        {"product_id": "b", "images": "i", "distractor_point": "5,5"},
    )))
    cat = read_catalog(path)
    assert cat.products == ()
    assert problems(cat) == [
        (1, "a", "reference is missing"),
        (2, "b", "distractor_point and ref need the reference's prompt; without a point or a "
                 "box the prompt is proposed, so leave them out"),
    ]


def test_catalog_id_ignores_where_the_prompt_came_from(tmp_path: Path) -> None:
    header = "product_id,images,reference,point,prompt_source,prompt_confidence\n"
    proposed = write(tmp_path / "p.csv", header + 'a,i,r.jpg,"5,6",proposed,0.9\n')
    confirmed = write(tmp_path / "c.csv", header + 'a,i,r.jpg,"5,6",confirmed,0.9\n')
    clicked = write(tmp_path / "k.csv", header + 'a,i,r.jpg,"5,6",,\n')
    moved = write(tmp_path / "m.csv", header + 'a,i,r.jpg,"5,7",confirmed,0.9\n')
    ids = [catalog_id(read_catalog(p).products) for p in (proposed, confirmed, clicked, moved)]
    assert ids[0] == ids[1] == ids[2] != ids[3]
