"""``python -m prodseg``: the ``prodseg`` command line."""

import sys

from prodseg.producer.cli.main import main

sys.exit(main())
