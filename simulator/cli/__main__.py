"""`python -m simulator.cli`: the same as the `autosplit` script."""
from __future__ import annotations

import sys

from simulator.cli import main

sys.exit(main())
