"""The job plan: one set of steps for both executors, candidates stored exactly, the bank
grown in capture order, and every setting either acting alike in both modes or declared
machine-local."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from prodseg.settings import JOB, MACHINE, SECRET, Settings, load_settings, scope_of
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import SelectParams, ViewCandidates, select_view
from prodseg.workers.match.instances import mask_shape
from prodseg.workers.plan.job_plan import JobPlan, resolve_in_order

REPO = Path(__file__).resolve().parents[3]
EXECUTOR_ONLY = [REPO / "workers/plan/local_run.py",
                 *(REPO / "tasks" / f for f in ("job_tasks.py", "step_chain.py", "step_task.py",
                                                "worker_cache.py", "preview_task.py",
                                                "propose_task.py"))]
"""Modules that only one executor runs: a job setting read there would act in one mode.
(``tasks/worker.py`` reads the worker's own model settings, to check its weights at
start, before any job.)"""
SHARED = [p for p in sorted((REPO / "workers").rglob("*.py")) if p not in EXECUTOR_ONLY]
"""The plan's steps and the models, which both executors run."""


def settings_read(path: Path) -> set[str]:
    """Names of ``Settings`` fields read in a module: ``settings.x``, ``s.x``,
    ``self.settings.x``, ``pipeline.settings.x`` and the like."""
    fields = set(Settings.model_fields)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in fields:
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else (
                owner.attr if isinstance(owner, ast.Attribute) else "")
            if name in ("s", "settings", "_settings") or name.endswith("settings"):
                found.add(node.attr)
    return found


def test_every_setting_acts_alike_in_both_modes_or_is_machine_local() -> None:
    """Walk every ``Settings`` field: a job setting is read by the steps both executors
    run and by no executor alone; anything else is declared machine-local (or secret)."""
    shared = set().union(*(settings_read(p) for p in SHARED))
    executor_only = {p.relative_to(REPO).as_posix(): settings_read(p) for p in EXECUTOR_ONLY}
    for name in Settings.model_fields:
        scope = scope_of(name)
        if scope & JOB:
            assert name in shared, f"job setting {name} is read by no step of the plan"
            for module, read in executor_only.items():
                assert name not in read, f"job setting {name} acts in {module} alone"
        else:
            assert scope & (MACHINE | SECRET), f"{name} is neither a job setting nor local"


def test_the_walk_sees_a_setting_read_by_one_executor(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(pipeline, s):\n    return pipeline.settings.bank_size, s.seed\n")
    assert settings_read(module) == {"bank_size", "seed"}


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _view(image_id: str, vectors: list[np.ndarray], size: int = 8) -> ViewCandidates:
    """Candidates of one view: one small square mask per embedding, side by side."""
    masks = np.zeros((len(vectors), size, size * len(vectors)), dtype=bool)
    for k in range(len(vectors)):
        masks[k, 2:6, size * k + 2 : size * k + 6] = True
    return ViewCandidates(image_id, f"set/{image_id}.jpg", masks.shape[2], size, masks,
                          np.stack(vectors).astype(np.float32))


def test_candidates_round_trip_exactly_and_deterministically() -> None:
    rng = np.random.default_rng(0)
    view = ViewCandidates("v1", "a/v1.jpg", 37, 11, rng.random((3, 11, 37)) > 0.5,
                          rng.standard_normal((3, 5)).astype(np.float32), "guided+grid")
    data = view.to_bytes()
    back = ViewCandidates.from_bytes(data)
    assert np.array_equal(back.masks, view.masks)
    assert np.array_equal(back.embeddings, view.embeddings)
    assert (back.image_id, back.source, back.size, back.found_by) == (
        "v1", "a/v1.jpg", (37, 11), "guided+grid")
    assert ViewCandidates.from_bytes(data).to_bytes() == data
    failed = ViewCandidates.from_bytes(ViewCandidates.failed("v2", "v2.jpg", "v2.jpg: bad")
                                       .to_bytes())
    assert failed.error == "v2.jpg: bad" and failed.size == (0, 0)


def test_a_growing_bank_carries_one_view_to_the_next_in_visit_order() -> None:
    """Views a -> b -> c, each a step further from the reference: c matches only once
    b's match joined the bank, and only when b is visited first."""
    select = SelectParams(0.8, 0.05, 0.5, 1, 0.8, 0.8)
    plan = JobPlan.of(load_settings(bank_size=4, bank_add_threshold=0.85, bank_margin=0.0,
                                    similarity_threshold=0.8))
    reference = _unit(1, 0, 0)
    step = _unit(1, 0.45, 0)       # cos 0.91 to the reference
    further = _unit(1, 0.98, 0.1)  # cos 0.71 to the reference, 0.93 to ``step``
    views = [_view("b", [step]), _view("c", [further])]
    shape = mask_shape(views[0].masks[0])

    def results(order: list[int]) -> dict[str, int]:
        bank = plan.fixed_bank(reference)
        found = resolve_in_order(lambda i: views[i], order, bank, select, shape)
        return {r.image_id: len(r.matches) for _, r in found}

    assert results([0, 1]) == {"b": 1, "c": 1}
    assert results([1, 0]) == {"c": 0, "b": 1}
    alone = select_view(views[1], PrototypeBank(reference), select, shape)
    assert not alone.matches


def test_capture_and_visit_order_come_from_names_sizes_and_candidates() -> None:
    plan = JobPlan.of(load_settings())
    sources = [f"s/v_{i:02d}.jpg" for i in (0, 1, 2, 4)]
    assert plan.capture_of(("s/v_03.jpg", (640, 480)), sources,
                           lambda: [(640, 480)] * 4) == "spin"
    assert plan.capture_of(("ref.jpg", (640, 480)), ["a.jpg"],
                           lambda: [(2048, 1024)]) == "panorama"
    assert plan.capture_of(("ref.jpg", (640, 480)), ["a.jpg"],
                           lambda: [(2000, 1001)]) == "panorama"
    assert plan.capture_of(("x/a.jpg", (9, 9)), ["y/b.jpg"], lambda: [(9, 9)]) == "unordered"

    def unread() -> list[tuple[int, int]]:
        raise AssertionError("a capture set by the settings reads no image")

    spin_plan = JobPlan.of(load_settings(capture="spin"))
    assert spin_plan.capture_of(("x/a.jpg", (9, 9)), ["y/b.jpg"], unread) == "spin"
    assert plan.visit_order("spin", "s/v_03.jpg", sources, [0.0] * 4) == [3, 2, 0, 1]
    assert plan.visit_order("unordered", "s/v_03.jpg", sources, [0.1, 0.9, -np.inf, 0.5]
                            ) == [1, 3, 0, 2]


@pytest.mark.parametrize("bank_size, distractors, expected", [
    (1, 0, None), (1, 1, {"prototypes": ["reference"], "distractors": 1, "neighbours": 2}),
    (4, 0, {"prototypes": ["reference"], "distractors": 0, "neighbours": 2})])
def test_the_bank_record_names_its_members(bank_size: int, distractors: int,
                                           expected: dict[str, object] | None) -> None:
    plan = JobPlan.of(load_settings(bank_size=bank_size))
    negatives = [np.stack([_unit(0, 1)] * distractors)] if distractors else []
    neighbours = np.stack([_unit(0, 1), _unit(1, 1)])
    assert plan.bank_record(plan.fixed_bank(_unit(1, 0), negatives, (), neighbours)) == expected
