"""``python -m convgrad ...``: the ``convgrad`` command (:mod:`convgrad.apps.cli`)."""
import sys

from .apps.cli import main

sys.exit(main())
