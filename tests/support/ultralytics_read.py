"""Read a YOLO segmentation dataset with Ultralytics and print what it holds, as JSON.

Run by ``tests.support.ultralytics_env`` in a child process: ``python ultralytics_read.py
DATA_YAML``. Ultralytics' own checker resolves the dataset (``check_det_dataset``), and
``YOLODataset`` with ``task="segment"`` reads and verifies every label.
"""

from __future__ import annotations

import json
import sys

from ultralytics.data import YOLODataset
from ultralytics.data.utils import check_det_dataset


def main(data_yaml: str) -> None:
    data = check_det_dataset(data_yaml)
    dataset = YOLODataset(img_path=data["train"], data=data, task="segment", imgsz=320,
                          augment=False, cache=False)
    images = {}
    for label in dataset.labels:
        images[label["im_file"]] = {
            "shape": [int(v) for v in label["shape"]],
            "cls": [int(c) for c in label["cls"].reshape(-1)],
            "segments": [s.tolist() for s in label["segments"]],
        }
    print(json.dumps({"names": {str(k): v for k, v in data["names"].items()},
                      "images": images}))


if __name__ == "__main__":
    main(sys.argv[1])
