"""Entry point of one data-parallel worker: ``python -m payoff.train._rank DIRECTORY RANK``.

Launched by `payoff.train._parallel`; not for users.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from payoff.train._parallel import run_rank

if __name__ == "__main__":
    code = run_rank(Path(sys.argv[1]), int(sys.argv[2]))
    # Everything is written and closed; tearing down torch's ~1,000 modules would add
    # seconds to every trial's wall time for nothing. (An exception exits normally.)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
