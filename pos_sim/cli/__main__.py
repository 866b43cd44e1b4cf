"""``python -m pos_sim.cli COMMAND ...``: the same as ``pos-sim COMMAND ...``."""

import sys

from pos_sim.cli import main

sys.exit(main())
