"""`python -m robyn app.py [flags]`: the robyn command (robyn/cli.py)."""

from .cli import run

if __name__ == "__main__":
    run()
