"""The one JSON reader: storyboards, workflow files, route bodies and server answers all come through here.

Python's own reader accepts more than JSON and fails in ways that are not errors of the input: ``NaN`` and
``Infinity`` tokens, ``1e400`` (read as infinity), integers of thousands of digits (``ValueError`` from the
int conversion limit), lone surrogates (``"\\ud800"``, which no file or graph can encode), nesting a thousand
levels deep (``RecursionError``, here or in whatever walks the data next). This reader refuses each of them
with the project's error type, naming the place: the JSON path where the value stands, or the line and
column where the text breaks off.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import AnimStudioError, Problem

MAX_DEPTH = 64                # a storyboard nests about 6 levels, a UI workflow about 12
MAX_FILE_BYTES = 64 << 20     # a 10,000-shot storyboard is about 4 MB
MAX_INT_DIGITS = 20           # every integer a storyboard or graph holds fits in 64 bits
MAX_PROBLEMS = 20


def json_path(parts) -> str:
    """``["shots", 2, "id"]`` → ``$.shots[2].id`` (names that are not identifiers are quoted)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(_printable(str(part)))}]"
    return out


class _Refused:
    """A value the reader will not hand on: left in place by the parse hooks, reported at its path."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def _constant(token: str) -> _Refused:
    return _Refused(f"{token} is not a number JSON allows; write a finite number")


def _integer(text: str) -> int | _Refused:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return _Refused(f"an integer of {digits} digits is out of range (at most {MAX_INT_DIGITS} digits)")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return _Refused(f"{text[:40]} is too large for a number")
    return value


def parse_json(raw: bytes | str, source: str = "", *, error: type[AnimStudioError] = AnimStudioError,
               max_bytes: int | None = None, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` as strict JSON; raise ``error`` naming every place the document breaks the rules."""
    label = f"{source}: " if source else ""
    if max_bytes is not None and len(raw) > max_bytes:
        raise error(f"{label}too large to read", [Problem("$", f"{len(raw)} bytes; the limit is {max_bytes}")])
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{label}not UTF-8 text",
                        [Problem(f"byte {exc.start}", "cannot be decoded as UTF-8; save the file as UTF-8")]) from None
    elif raw.startswith("\ufeff"):
        raw = raw[1:]
    deep = _too_deep_at(raw, max_depth)
    if deep is not None:
        raise error(f"{label}nested too deeply", [Problem(deep, f"nested deeper than {max_depth} levels")])
    try:
        data = json.loads(raw, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise error(f"{label}not valid JSON", [Problem(f"line {exc.lineno}, column {exc.colno}", exc.msg)]) from None
    except (ValueError, RecursionError) as exc:  # what the scanner itself may still raise
        raise error(f"{label}not valid JSON", [Problem("$", str(exc)[:200])]) from None
    return check_data(data, source, error=error, max_depth=max_depth)


def read_json(path: str | Path, *, error: type[AnimStudioError] = AnimStudioError,
              max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Read and :func:`parse_json` a file; a missing or unreadable file is ``error`` too, naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: too large to read", [Problem("$", f"{size} bytes; the limit is {max_bytes}")])
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"cannot read {path}", [Problem(str(path), exc.strerror or str(exc))]) from None
    return parse_json(raw, str(path), error=error, max_bytes=max_bytes, max_depth=max_depth)


# ------------------------------------------------------------------------------------------ depth

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


def _too_deep_at(text: str, max_depth: int) -> str | None:
    """The JSON path where ``text`` first nests deeper than ``max_depth``, or None. A cheap count of brackets
    outside strings first; the path is worked out only for a document that is too deep."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return _path_at(text, match.start())
        elif char in "]}":
            depth -= 1
    return None


def _path_at(text: str, offset: int) -> str:
    """The JSON path of the value that starts at ``offset``, walking the tokens before it."""
    stack: list[list] = []  # [kind, key or index, expecting a key]
    for match in _TOKEN.finditer(text, 0, offset + 1):
        token = match.group()
        if match.start() >= offset:
            break
        if token in "[{":
            stack.append(["[" if token == "[" else "{", 0 if token == "[" else None, token == "{"])
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            if stack and stack[-1][0] == "[":
                stack[-1][1] += 1
            elif stack:
                stack[-1][2] = True
        elif token == ":":
            if stack:
                stack[-1][2] = False
        elif stack and stack[-1][0] == "{" and stack[-1][2]:
            try:
                stack[-1][1] = json.loads(token)
            except ValueError:
                stack[-1][1] = token.strip('"')
    parts = [entry[1] for entry in stack if entry[1] is not None]
    return json_path(parts[:MAX_DEPTH]) + ("…" if len(parts) > MAX_DEPTH else "")


# ------------------------------------------------------------------------------------------ values

def check_data(data: Any, source: str = "", *, error: type[AnimStudioError] = AnimStudioError,
               max_depth: int = MAX_DEPTH) -> Any:
    """The same rules for data that did not come through :func:`parse_json` (a route's body parsed by a
    server, a planner's answer, a dict built in code): raise ``error`` naming each place, or return ``data``."""
    problems = _refused_values(data, max_depth)
    if problems:
        raise error(f"{source + ': ' if source else ''}{len(problems)} value(s) cannot be read", problems)
    return data


def _refused_values(data: Any, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """Every refused token, non-finite or out-of-range number, string that cannot be written out as UTF-8
    and container nested past ``max_depth``, at its JSON path (iteratively: no recursion to exhaust)."""
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple]] = [(data, ())]
    while stack and len(problems) < MAX_PROBLEMS:
        value, parts = stack.pop()
        if isinstance(value, (dict, list)) and len(parts) >= max_depth:
            problems.append(Problem(json_path(parts), f"nested deeper than {max_depth} levels"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or not _encodable(key):
                    problems.append(Problem(json_path(parts + (str(key),)), "the name holds a lone surrogate, "
                                                                             "which is no character"))
                stack.append((item, parts + (str(key),)))
        elif isinstance(value, list):
            stack.extend((item, parts + (i,)) for i, item in enumerate(value))
        else:
            reason = _value_problem(value)
            if reason:
                problems.append(Problem(json_path(parts), reason))
    return sorted(problems, key=lambda p: p.where)


def _value_problem(value: Any) -> str | None:
    if isinstance(value, _Refused):
        return value.reason
    if isinstance(value, str):
        return None if _encodable(value) else (f"the text holds a lone surrogate ({_surrogate(value)}), which is "
                                               "no character; write the character itself")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if value.bit_length() <= 64 else f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits is out of range"
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else f"{value} is not a number JSON allows"
    return f"a Python {type(value).__name__} is not a JSON value"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(text: str) -> str:
    char = next(c for c in text if 0xD800 <= ord(c) <= 0xDFFF)
    return f"\\u{ord(char):04x}"


def _printable(text: str) -> str:
    return text if _encodable(text) else text.encode("utf-8", "backslashreplace").decode("ascii")
