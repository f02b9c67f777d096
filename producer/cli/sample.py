"""``prodseg sample``: render a sample spin set with ground truth to try prodseg on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prodseg.errors import InputError
from prodseg.producer.cli.options import EXIT_OK, SubParsers, count_arg


def register(sub: SubParsers) -> None:
    """Add ``prodseg sample``."""
    sample = sub.add_parser(
        "sample",
        help="render a sample spin set (a carton on a shelf) with ground truth",
        description="Render a product spin set: a carton whose four sides carry different "
        "artwork, photographed at N angles on a shelf with distractor products, plus "
        "shelf-only photos. Writes images/, ground_truth/ and sample.json.",
    )
    sample.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                     help="output directory")
    sample.add_argument("--views", type=count_arg(1), default=12, metavar="N",
                        help="angles around the product (default 12)")
    sample.add_argument("--shelf-only", type=count_arg(0), default=2, metavar="N",
                        help="photos without the product (default 2)")
    sample.add_argument("--size", default="1024x768", metavar="WxH",
                        help="WIDTHxHEIGHT (default 1024x768)")
    sample.add_argument("--seed", type=count_arg(0), default=0, metavar="N",
                        help="random seed (default 0)")
    sample.add_argument("--catalog", type=count_arg(1), metavar="N",
                        help="render a catalog instead: N products, one photo folder each "
                        "(photos/<product>/), the product up to --max-offset off the "
                        "frame's centre, every third beside a lookalike; truth.json and "
                        "truth/ hold the true masks")
    sample.add_argument("--max-offset", type=float, default=0.2, metavar="F",
                        help="--catalog: the product's centre up to F of the frame off "
                        "its centre (default 0.2)")
    sample.set_defaults(handler=cmd_sample, extras=("worker",))

def cmd_sample(args: argparse.Namespace) -> int:
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WIDTHxHEIGHT, got {args.size!r}") from None
    if min(width, height) < 32:
        raise InputError(f"--size: the image must be at least 32x32, got {args.size!r}")
    if args.catalog:
        from prodseg.producer.samples.catalog import write_sample_catalog

        if not 0 <= args.max_offset <= 0.4:
            raise InputError(f"--max-offset: expected 0 to 0.4, got {args.max_offset:g}")
        write_sample_catalog(args.output, args.catalog, args.views, (width, height),
                             args.seed, args.max_offset)
        print(f"rendered {args.catalog} products into {args.output / 'photos'}")
        print("try:")
        print(f"  prodseg catalog prepare {args.output / 'photos'} -o "
              f"{args.output / 'catalog.csv'} --propose local --backend classic")
        return EXIT_OK
    spin = render_spin_set(
        n_views=args.views, height=height, width=width,
        n_distractor_only=args.shelf_only, seed=args.seed,
    )
    manifest = write_sample_set(args.output, spin)
    x, y = spin.reference_point
    ref = args.output / "images" / Path(spin_reference_name(manifest)).name
    print(f"rendered {len(spin.views)} images into {args.output / 'images'}")
    print("try:")
    print(f"  prodseg run --images {args.output / 'images'} --reference {ref} "
          f"--ref-point {x},{y} --output {args.output / 'results'}")
    return EXIT_OK


def spin_reference_name(manifest: Path) -> str:
    """The reference image named in a sample set's ``sample.json``."""
    return str(json.loads(manifest.read_text())["reference"])


