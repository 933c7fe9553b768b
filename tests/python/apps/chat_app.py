"""The chat example, examples/chat/app.py, run unchanged (as `python examples/chat/app.py`
would), for test_chat_browser.py and conftest's start_app("chat_app")."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "chat" / "app.py"

if __name__ == "__main__":
    runpy.run_path(str(EXAMPLE), run_name="__main__")
