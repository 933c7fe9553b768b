"""The command line of a Robyn app: `python app.py [flags]`, `robyn app.py [flags]`.

One parser, built on robyn.processes' (`--processes`, `--workers`), holds every flag of
Robyn 0.88's command line and this server's own (`--host`, `--port`). A flag is either
honoured or refused with an error naming it (exit status 2); an argument that looks like a
flag and is nobody's is an error too, so that a typo never passes silently. Arguments after
`--`, and those that do not start with `-`, are left to the script.

Each flag has an environment equivalent (docs/cli.md has the table); the flag wins over the
variable, which wins over the keywords of `app.start()`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import processes

__all__ = ["Config", "LOG_LEVELS", "build_parser", "parse", "version"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")

# Set by the dev-mode reloader in the environment of the app it runs: that process serves
# (in dev mode) and never becomes a reloader itself. The name is Robyn's.
RELOADED_MARKER = "IS_RELOADER_RUNNING"
# --workers M: the I/O shards of one process (gateway/server.h, GW_MAX_SHARDS).
MAX_WORKERS = 64

TEMPLATES = ("chat", "dashboard")

# Flags of Robyn 0.88 that this server cannot honour, and why (the error says so).
_REFUSED = {
    "--docs": "Robyn's online documentation is not this project's; read docs/ in its source",
    "--compile-rust-path": "Rust extensions are not part of this project (its core is C)",
    "--create-rust-file": "Rust extensions are not part of this project (its core is C)",
}


def version() -> str:
    """This package's version, from its installed metadata."""
    from . import __version__

    return __version__


@dataclass
class Config:
    """What the command line (and its environment equivalents) asks for: Robyn's attribute
    names, plus `host`, `port` and `template`. `Config()` holds the defaults (an app given
    one, `Robyn(__file__, config=Config())`, may set `disable_openapi` on it);
    `Config.from_command_line()` parses sys.argv. app.start() always parses the command
    line itself."""

    processes: int = 1
    workers: int = 1
    dev: bool = False
    log_level: str = "INFO"
    log_level_given: bool = False
    create: bool = False
    create_path: str | None = None
    template: str = "chat"
    docs: bool = False
    open_browser: bool = False
    version: bool = False
    compile_rust_path: str | None = None
    create_rust_file: str | None = None
    file_path: str | None = None
    disable_openapi: bool = False
    fast: bool = False
    host: str | None = None
    port: int | None = None
    access_log: bool = False
    script_args: list[str] = field(default_factory=list)

    @classmethod
    def from_command_line(cls) -> Config:
        return parse(sys.argv[1:])


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port takes a whole number, not {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be between 1 and 65535, not {value}")
    return value


def _log_level(text: str) -> str:
    name = text.upper()
    if name not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {text!r}")
    return "WARNING" if name == "WARN" else name


class _Refused(argparse.Action):
    """A flag of Robyn's that this server cannot honour: naming it is an error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        flag = option_string or self.dest
        parser.error(f"{flag} is not supported: {_REFUSED[flag]}")


def build_parser(prog: str | None = None, with_app: bool = False) -> argparse.ArgumentParser:
    """The parser of every flag; `with_app` adds the app file as the first positional
    argument (the robyn command's)."""
    parser = argparse.ArgumentParser(
        prog=prog, parents=[processes.argument_parser()], allow_abbrev=False,
        description="Robyn: an async web framework with Robyn's API on a C core "
                    "(libwebsockets). Every flag has an environment equivalent "
                    "(ROBYN_HOST, ROBYN_PORT, ...): see docs/cli.md.",
        epilog="Arguments after `--` and those not starting with '-' are the script's own.")
    if with_app:
        parser.add_argument("app", nargs="?", default=None,
                            help="the app file to run (e.g. app.py), or the folder to create "
                                 "with --create")
    parser.add_argument("--dev", action="store_true", default=None,
                        help="development mode: restart the app when a .py file under its "
                             "folder changes; logs at DEBUG [env: ROBYN_DEV_MODE]")
    parser.add_argument("--log-level", dest="log_level", type=_log_level, default=None,
                        metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL [default: INFO; DEBUG "
                             "with --dev; WARNING with --fast] [env: ROBYN_LOG_LEVEL]")
    parser.add_argument("--host", default=None,
                        help="the address to listen on [default: app.start()'s host, "
                             "127.0.0.1] [env: ROBYN_HOST]")
    parser.add_argument("--port", type=_port, default=None,
                        help="the port to listen on [default: app.start()'s port, 8080] "
                             "[env: ROBYN_PORT]")
    parser.add_argument("--disable-openapi", dest="disable_openapi", action="store_true",
                        default=None,
                        help="do not serve /docs and /openapi.json [env: ROBYN_DISABLE_OPENAPI]")
    parser.add_argument("--fast", action="store_true", default=None,
                        help="the fastest settings for this server: one process per CPU core "
                             "(--processes), log level WARNING; flags given win [env: ROBYN_FAST]")
    parser.add_argument("--open-browser", dest="open_browser", action="store_true",
                        default=False, help="open the app in a web browser once it serves")
    parser.add_argument("--create", action="store_true", default=False,
                        help="create a new project in a folder (robyn --create FOLDER)")
    parser.add_argument("--template", choices=TEMPLATES, default=None,
                        help="the project --create makes: chat (a WebSocket chat room) or "
                             "dashboard (a page with live figures) [default: chat]")
    parser.add_argument("--version", action="store_true", default=False,
                        help="print the version and exit")
    parser.add_argument("--access-log", dest="access_log", action="store_true", default=None,
                        help="log a line per answer to the robyn.access logger [default: on "
                             "with --dev, off otherwise] [env: ROBYN_ACCESS_LOG]")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not log each answer (also in --dev)")
    for flag in _REFUSED:
        takes_value = flag in ("--compile-rust-path", "--create-rust-file")
        parser.add_argument(flag, action=_Refused, nargs=1 if takes_value else 0,
                            default=None, help=f"not supported: {_REFUSED[flag]}")
    return parser


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    if name not in env:
        return None
    raw = env[name].strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name} must be one of true, false, 1, 0, yes, no, on, off, not {env[name]!r}")


# What each I/O thread may wait in (gateway/server.c, make_loop).
EVENT_LOOPS = ("epoll", "poll")


def _env_count(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None,
          prog: str | None = None, with_app: bool = False) -> Config:
    """The Config of `argv` (without the program name) and the environment. --help and
    --version print and exit 0; a bad or refused flag exits 2 with argparse's message; a bad
    environment value raises ValueError naming the variable."""
    env = os.environ if environ is None else environ
    args_list = list(argv)
    script_args: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, script_args = args_list[:cut], args_list[cut + 1:]
    parser = build_parser(prog, with_app)
    args, unknown = parser.parse_known_args(args_list)
    flags = [arg for arg in unknown if arg.startswith("-") and arg != "-"]
    if flags:
        parser.error(f"unrecognized arguments: {' '.join(flags)}")
    if args.version:
        print(f"robyn {version()}")
        parser.exit(0)

    if args.create and not with_app:
        parser.error("--create is the robyn command's: robyn --create FOLDER [--template chat|dashboard]")
    config = Config()
    config.script_args = [*unknown, *script_args]
    config.create = args.create
    config.template = args.template or "chat"
    if args.template is not None and not args.create:
        parser.error("--template is only meaningful with --create")
    if with_app:
        if args.create:
            config.create_path = args.app
        else:
            config.file_path = args.app
    config.open_browser = args.open_browser

    dev = args.dev if args.dev is not None else _env_bool(env, "ROBYN_DEV_MODE")
    if dev is None:
        dev = _env_bool(env, "ROBYN_DEV")
    if env.get(RELOADED_MARKER):
        dev = True  # the app the reloader runs: dev mode, but it does not reload itself
    fast = args.fast if args.fast is not None else _env_bool(env, "ROBYN_FAST")
    config.dev = bool(dev)
    config.fast = bool(fast)

    processes_count = args.processes if args.processes is not None else _env_count(env, "ROBYN_PROCESSES")
    workers = args.workers if args.workers is not None else _env_count(env, "ROBYN_WORKERS")
    log_level = args.log_level
    if log_level is None and env.get("ROBYN_LOG_LEVEL", "").strip():
        raw = env["ROBYN_LOG_LEVEL"].strip()
        if raw.upper() not in LOG_LEVELS:
            raise ValueError(f"ROBYN_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}")
        log_level = "WARNING" if raw.upper() == "WARN" else raw.upper()
    config.log_level_given = log_level is not None

    if config.fast and config.dev:
        parser.error("--fast and --dev cannot be used together")
    if config.fast:
        # One event loop per process: more processes than cores only adds switching.
        processes_count = processes_count or (os.cpu_count() or 1)
        log_level = log_level or "WARNING"
    if config.dev and ((processes_count or 1) != 1 or (workers or 1) != 1):
        parser.error("--processes and --workers cannot be used with --dev")
    config.processes = processes_count or 1
    config.workers = workers or 1
    # Read by the C server in each process; checked here so that a bad value stops the app
    # before any process starts (docs/configuration.md).
    event_loop = env.get("ROBYN_EVENT_LOOP", "")
    if event_loop and event_loop not in EVENT_LOOPS:
        raise ValueError(f"ROBYN_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, not "
                         f"{event_loop!r}")
    if config.workers > MAX_WORKERS:
        raise ValueError(f"--workers {config.workers}: at most {MAX_WORKERS} I/O threads per "
                         "process (each is one event loop; more than the cores only adds "
                         "switching)")
    config.log_level = log_level or ("DEBUG" if config.dev else "INFO")
    access_log = args.access_log if args.access_log is not None else _env_bool(env, "ROBYN_ACCESS_LOG")
    config.access_log = config.dev if access_log is None else access_log

    disable = args.disable_openapi if args.disable_openapi is not None else _env_bool(env, "ROBYN_DISABLE_OPENAPI")
    config.disable_openapi = bool(disable)
    config.host = args.host if args.host is not None else (env.get("ROBYN_HOST") or None)
    if args.port is not None:
        config.port = args.port
    elif env.get("ROBYN_PORT", "").strip():
        raw = env["ROBYN_PORT"].strip()
        try:
            config.port = int(raw, 10)
        except ValueError:
            raise ValueError(f"ROBYN_PORT must be an integer, not {raw!r}") from None
    return config


def apply_log_level(config: Config) -> None:
    """Sets up `logging` for the app: a stderr handler when nothing is configured, and the
    level asked for (a level given by flag or variable also overrides a configured one)."""
    level = getattr(logging, config.log_level)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s:%(name)s:%(message)s")
    elif config.log_level_given or config.dev:
        root.setLevel(level)
