"""The app of tests/python/test_cli.py: says which process answers and what arguments the
command line left to the script."""

import os
import sys

from robyn import Robyn

app = Robyn(__file__)
VERSION = "one"  # test_cli's --dev test rewrites this line in its copy


@app.get("/")
def index():
    return {"version": VERSION, "pid": os.getpid(), "argv": sys.argv[1:],
            "from_env_file": os.environ.get("CLI_APP_SETTING", "")}


if __name__ == "__main__":
    app.start()
