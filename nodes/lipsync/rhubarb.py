"""Run the Rhubarb Lip Sync binary, when one is installed, and read its cues back.

Why call the binary at all when the pack has its own aligner: Rhubarb is the reference animators know,
and its cues are what their rigs were drawn for. It is optional; nothing here is needed without it.

Finding it: ``RHUBARB_PATH`` (the executable itself, or the folder holding it), else ``rhubarb`` on PATH.
Rhubarb looks for its speech models in a ``res/`` folder next to the real executable (it resolves
symlinks first and checks ``res/sphinx/cmudict-en-us.dict``), so unpack the whole release archive and
point at the binary inside it; a lone copied binary fails with "could not find resource file".

The run is ``rhubarb -f json --extendedShapes GHX [-d dialog.txt] -r pocketSphinx -q -o out.json in.wav``
(the input file must come last). ``-q`` keeps stderr quiet unless something goes wrong, so what stderr
holds on failure is the reason, and it goes into the error.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from .cues import EXTENDED_SHAPES, MouthCues
from .errors import LipSyncError
from .formats import parse_rhubarb_json

log = logging.getLogger(__name__)

RECOGNIZERS = ("pocketSphinx", "phonetic")  # pocketSphinx: English only; phonetic: any language
DEFAULT_TIMEOUT = 600.0  # seconds; Rhubarb takes roughly real time on one core for pocketSphinx
_EXE_NAMES = ("rhubarb", "rhubarb.exe")
_RESOURCE = Path("res") / "sphinx" / "cmudict-en-us.dict"  # the file Rhubarb checks at start


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _locate() -> tuple[str | None, str]:
    """The binary's path, or None and why not (the why names what was looked at)."""
    configured = os.environ.get("RHUBARB_PATH", "").strip()
    if configured:
        path = Path(configured).expanduser()
        candidates = [path / name for name in _EXE_NAMES] if path.is_dir() else [path]
        for candidate in candidates:
            if _executable(candidate):
                return str(candidate), ""
        return None, (f"RHUBARB_PATH={configured} is not an executable rhubarb binary"
                      + (" (the folder holds no rhubarb or rhubarb.exe)" if path.is_dir() else ""))
    found = shutil.which("rhubarb")
    if found:
        return found, ""
    return None, ("the rhubarb binary was not found: set RHUBARB_PATH to it (or its folder) or put it on PATH "
                  "(releases: https://github.com/DanielSWolf/rhubarb-lip-sync/releases)")


def rhubarb_available() -> str | None:
    """The path of the rhubarb binary that :func:`run_rhubarb` would use, or None when there is none."""
    path, why = _locate()
    if path is None:
        log.debug("%s", why)
    return path


def _missing_resources(binary: str) -> str:
    """A hint when Rhubarb's res/ folder is not beside the real binary (its most common setup error)."""
    folder = Path(binary).resolve().parent
    if (folder / _RESOURCE).is_file():
        return ""
    return f" Rhubarb needs its res/ folder next to the binary: {folder / _RESOURCE} is missing."


def _tail(text: str | bytes | None, lines: int = 12, chars: int = 1500) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    tail = "\n".join((text or "").strip().splitlines()[-lines:])
    return tail[-chars:] if tail else "(no output on stderr)"


def _arguments(binary: str, wav: Path, out: Path, dialog: Path | None, extended_shapes: str,
               recognizer: str) -> list[str]:
    args = [binary, "-f", "json", "--extendedShapes", extended_shapes]
    if dialog is not None:
        args += ["-d", str(dialog)]
    return args + ["-r", recognizer, "-q", "-o", str(out), str(wav)]


def run_rhubarb(wav_path, dialog_text: str | None = None, extended_shapes: str = "GHX",
                recognizer: str = "pocketSphinx", timeout: float = DEFAULT_TIMEOUT) -> MouthCues:
    """Animate ``wav_path`` (WAVE or Ogg Vorbis) with the rhubarb binary and return its cues.

    ``dialog_text`` goes to Rhubarb as a dialog file (``-d``): it prefers those words but still follows
    the audio where the speaker strayed. Raises :class:`LipSyncError` for a missing binary, a failed or
    timed-out run, or output it cannot read; ``ValueError`` for arguments Rhubarb would reject.
    """
    extended_shapes = (extended_shapes or "").upper()
    if set(extended_shapes) - set(EXTENDED_SHAPES):
        raise ValueError(f"extended_shapes {extended_shapes!r}: only the letters G, H and X are allowed")
    if recognizer not in RECOGNIZERS:
        raise ValueError(f"recognizer {recognizer!r}: use one of {', '.join(RECOGNIZERS)}")
    binary, why = _locate()
    if binary is None:
        raise LipSyncError(why)
    wav = Path(wav_path).resolve()
    if not wav.is_file():
        raise LipSyncError(f"rhubarb input {wav} does not exist")

    with tempfile.TemporaryDirectory(prefix="animstudio-rhubarb-") as folder:
        out = Path(folder) / "cues.json"
        dialog = None
        if dialog_text is not None and dialog_text.strip():
            dialog = Path(folder) / "dialog.txt"
            dialog.write_text(dialog_text, encoding="utf-8")
        args = _arguments(binary, wav, out, dialog, extended_shapes, recognizer)
        log.info("running %s", " ".join(args))
        try:
            done = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise LipSyncError(f"rhubarb ({binary}) did not finish within {timeout:g} s on {wav.name}; "
                               f"stderr: {_tail(e.stderr)}") from None
        except OSError as e:  # vanished, not executable, wrong architecture
            raise LipSyncError(f"could not start rhubarb ({binary}): {e}{_missing_resources(binary)}") from None
        if done.returncode != 0:
            raise LipSyncError(f"rhubarb ({binary}) failed with exit code {done.returncode} on {wav.name}: "
                               f"{_tail(done.stderr)}{_missing_resources(binary)}")
        if not out.is_file():
            raise LipSyncError(f"rhubarb ({binary}) exited cleanly but wrote no output file; "
                               f"stderr: {_tail(done.stderr)}")
        text = out.read_text(encoding="utf-8")
    try:
        cues = parse_rhubarb_json(text, engine="rhubarb")
    except ValueError as e:
        raise LipSyncError(f"could not read rhubarb's ({binary}) output: {e}") from None
    notes = (f"rhubarb {recognizer} recognizer",
             "with dialogue text" if dialog is not None else "without dialogue text")
    log.info("rhubarb gave %d mouth cues over %.2f s", len(cues.cues), cues.duration)
    return replace(cues, extended_shapes=extended_shapes, notes=cues.notes + notes)
