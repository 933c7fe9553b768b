"""The dashboard example, examples/dashboard/app.py, run unchanged (as `python
examples/dashboard/app.py` would: its own folder first on sys.path, for its sampler), for
test_dashboard.py and test_dashboard_browser.py."""

import runpy
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "dashboard" / "app.py"

if __name__ == "__main__":
    sys.path.insert(0, str(EXAMPLE.parent))
    runpy.run_path(str(EXAMPLE), run_name="__main__")
