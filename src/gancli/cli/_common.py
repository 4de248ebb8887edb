"""What every subcommand shares: error reporting and small parsers."""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import typer


@dataclass
class _State:
    debug: bool = False


STATE = _State()


def fail(message: str, code: int = 2) -> "typer.Exit":
    one_line = " ".join(str(message).split())  # messages quoting other errors may hold newlines
    typer.echo(f"error: {one_line}", err=True)
    return typer.Exit(code)


def handle_errors(fn: Callable) -> Callable:
    """User errors: one line on stderr, exit 2. Anything else: one line, exit 1 (traceback with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from gancli.errors import GancliError

        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except GancliError as exc:
            if STATE.debug:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except OSError as exc:
            if STATE.debug:
                raise
            reason = _USER_FIXABLE_ERRNOS.get(exc.errno)
            if reason is None:
                raise fail(f"unexpected {type(exc).__name__}: {exc} (run 'gancli --debug ...' for the traceback)", 1) from None
            raise fail(f"{exc.filename or 'a file'}: {reason}; free disk space or fix the permissions") from None
        except Exception as exc:
            if STATE.debug:
                raise
            raise fail(f"unexpected {type(exc).__name__}: {exc} (run 'gancli --debug ...' for the traceback)", 1) from None

    return wrapper


def _fixable_errnos() -> dict[int, str]:
    import errno

    return {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }


_USER_FIXABLE_ERRNOS = _fixable_errnos()


def parse_int_list(text: str, what: str) -> list[int]:
    from gancli.errors import GancliError

    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise GancliError(f"{what} must be comma-separated integers, e.g. 1,2,3; got {text!r}") from None


def parse_float_list(text: str, what: str) -> list[float]:
    from gancli.errors import GancliError

    try:
        values = [float(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise GancliError(f"{what} must be comma-separated numbers, e.g. 0.5,1.0; got {text!r}") from None
    if not values:
        raise GancliError(f"{what} needs at least one value")
    return values


def writable_output(path: Path, *, is_dir: bool = False) -> Path:
    """Check before any work that ``path`` can be written, so no run of minutes ends in a failed save."""
    from gancli.errors import GancliError

    path = Path(path).expanduser()
    folder = path if is_dir else path.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise GancliError(f"cannot write {path}: {blocker} is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GancliError(f"cannot create {folder}: {exc.strerror}; choose another --out") from None
    probe = folder / f".gancli-write-test-{__import__('os').getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GancliError(f"cannot write to {folder}: {exc.strerror}; choose another --out") from None
    if not is_dir and path.is_dir():
        raise GancliError(f"{path} is a folder; give a file name for --out")
    return path


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def is_tty() -> bool:
    return sys.stderr.isatty()



def complete_family(incomplete: str) -> list[str]:
    """Shell completion: installed family names (entry points only; torch is never imported)."""
    from gancli.plugins import discover

    return [name for name, record in discover().items() if record.ok and name.startswith(incomplete)]


def complete_recipe(incomplete: str) -> list[str]:
    """Shell completion: recipe names shipped by the installed families."""
    from gancli.config import list_recipes

    return [name for name in list_recipes() if name.startswith(incomplete)]
