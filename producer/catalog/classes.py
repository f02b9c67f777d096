"""Each product's class id in a catalog's datasets, stored with the catalog.

A dataset exported from a catalog grows over time: products are re-run, reviewed and
exported again. A product keeps the class it got the first time it was exported
(``catalogs/<catalog>/classes.json``: the product ids in class order); a product exported
for the first time takes the next free class. A product left out of one export keeps its
class, which then has no instances in that dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

from prodseg.producer.catalog.products import catalog_key
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.manifest import get_json, put_json

CLASSES_NAME = "classes.json"


def stored_classes(store: ObjectStore, catalog: str) -> list[str]:
    """The catalog's class map: product ids, class ``k`` at position ``k`` (may be empty)."""
    try:
        doc = get_json(store, catalog_key(catalog, CLASSES_NAME))
    except ObjectNotFound:
        return []
    return [str(p) for p in doc["classes"]]


def with_new_classes(classes: Sequence[str], products: Sequence[str]) -> list[str]:
    """``classes`` with every product not yet in it appended, in the order given (pure)."""
    known = set(classes)
    added = [p for p in dict.fromkeys(products) if p not in known]
    return [*classes, *added]


def store_classes(store: ObjectStore, catalog: str, classes: Sequence[str]) -> None:
    """Store the class map (only ever grown by ``with_new_classes``)."""
    put_json(store, catalog_key(catalog, CLASSES_NAME), {"classes": list(classes)})
