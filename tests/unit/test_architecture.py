"""The shape of the code: no import cycles, and torch only where the tree says.

Torch (with torchvision, timm and sam2) is imported by the modules that run a model:
``workers/segment/sam2_*``, ``workers/embed/dinov2``, ``workers/capture/sam2_video``,
``workers/models/builders`` and ``workers/models/dinov2_grid``. Everything else, the client
side entirely, imports without it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.imports import cycles, graph, heavy_at_import, heavy_imports, modules

TORCH_MODULES = {
    "prodseg.workers.segment.sam2_decoder",
    "prodseg.workers.segment.sam2_two_way",
    "prodseg.workers.segment.lanes",
    "prodseg.workers.segment.sam2_image",
    "prodseg.workers.segment.sam2_lowres",
    "prodseg.workers.segment.sam2_mixed_cells",
    "prodseg.workers.segment.sam2_boxes",
    "prodseg.workers.segment.sam2_proposals",
    "prodseg.workers.segment.sam2_candidates",
    "prodseg.workers.embed.dinov2",
    "prodseg.workers.capture.sam2_video",
    "prodseg.workers.models.builders",
    "prodseg.workers.models.dinov2_grid",
}
TORCH_FREE_PACKAGES = ("prodseg.producer", "prodseg.storage", "prodseg.tasks",
                       "prodseg.workers.ops", "prodseg.workers.match", "prodseg.workers.classic",
                       "prodseg.workers.plan")


def test_no_import_cycles() -> None:
    """Counting imports inside functions and under ``TYPE_CHECKING``: a cycle hidden
    that way is a cycle of the design all the same."""
    found = cycles(graph(typing_too=True))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_torch_is_imported_where_the_tree_says() -> None:
    """Only the model modules import torch (even inside functions); the rest import them."""
    direct = {name for name, libs in heavy_imports(module_level_only=False).items() if libs}
    assert direct == TORCH_MODULES


@pytest.mark.parametrize("package", TORCH_FREE_PACKAGES)
def test_torch_free_packages(package: str) -> None:
    heavy = heavy_at_import()
    loaded = {name: sorted(libs) for name, libs in heavy.items()
              if (name == package or name.startswith(package + ".")) and libs}
    assert not loaded


LIGHT = sorted(name for name, libs in heavy_at_import().items()
               if not libs and not name.endswith(".__main__"))


def test_torch_free_modules_import_without_torch() -> None:
    """What the static graph calls torch-free really is: import every such module."""
    code = ("import importlib, sys\n"
            f"for name in {LIGHT!r}:\n"
            "    importlib.import_module(name)\n"
            "heavy = sorted(m for m in ('torch', 'sam2', 'timm') if m in sys.modules)\n"
            "print(heavy)\nsys.exit(1 if heavy else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(LIGHT) > len(modules()) // 2


def test_package_inits_import_nothing_of_their_own() -> None:
    """A package's ``__init__`` that imported its modules would tie them into cycles."""
    mods = modules()
    busy = {name for name, deps in graph().items()
            if mods[name].name == "__init__.py" and any(d.startswith(name + ".") for d in deps)}
    assert not busy


def test_the_design_page_layout_names_every_module() -> None:
    """The Layout tree of docs/design.md lists each module once, under its folder."""
    from tests.support.imports import REPO

    text = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    tree = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    folders: list[tuple[int, str]] = []
    for line in tree.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        entry = line.split()[0]
        folders = [(i, f) for i, f in folders if i < indent]
        path = "".join(f for _, f in folders) + entry
        if entry.endswith("/"):
            folders.append((indent, entry))
        elif entry.endswith(".py"):
            listed.add(path)
    wanted = {str(path.relative_to(REPO)) for path in modules().values()
              if path.name != "__init__.py"}
    assert wanted - listed == set(), "not in the Layout of docs/design.md"
    assert listed - wanted == set(), "in the Layout of docs/design.md but not in the tree"


def test_json_is_written_through_jsonio_only() -> None:
    """``prodseg.jsonio`` refuses NaN and Infinity; no module writes JSON around it."""
    writers = {name for name, path in modules().items()
               if "json.dump" in path.read_text(encoding="utf-8")}
    assert writers == {"prodseg.jsonio"}


def test_state_objects_are_named_by_the_state_layout_only() -> None:
    """No module but ``storage.job_state`` spells a ``_state/`` name in its code
    (docstrings may speak of them)."""
    import ast

    from prodseg.storage import job_state

    names = {"_state", "candidates/"} | {
        value for key, value in vars(job_state).items()
        if key.isupper() and isinstance(value, str) and "." in value}
    assert {"reference.json", "negatives.npy", "bank.json", "end.json"} <= names
    spelled: dict[str, set[str]] = {}
    for name, path in modules().items():
        if name == "prodseg.storage.job_state":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings):
                hits = {n for n in names if n in node.value}
                if hits:
                    spelled.setdefault(name, set()).update(hits)
    assert spelled == {}
