"""Mouth cues as files, in the formats Rhubarb Lip Sync writes, byte for byte.

Why byte for byte: animators already have importers for Rhubarb's output (After Effects, Moho, OpenToonz,
Spine, Vegas, game engines), so cues from this pack's own aligner drop into the same pipelines, and the
rhubarb binary's own output reads back through the same parsers.

What Rhubarb does, and this module copies (rhubarb/src/exporters/*.cpp, tools/tools.cpp):

* Time is whole centiseconds, printed with two decimals (``0.05``). The duration is the clip's length
  truncated to 0.01 s. Our cues carry float seconds, so boundaries round to the nearest centisecond,
  the duration truncates, nothing passes the duration, and cues that become empty drop out while equal
  neighbours join (Rhubarb's timeline joins them too).
* JSON and XML: a metadata block (sound file, duration) and one cue per shape with start and end; an
  empty animation still gets one zero-length closed-mouth cue.
* TSV: one ``start<TAB>shape`` line per cue, then a last line at the end time with the closed mouth
  (X, or A where the shape set lacks X). No metadata.
* DAT (Moho switch data): ``MohoSwitch1``, then ``frame shape`` lines with 1-based frame numbers, one
  where the shape changes; the closing line is at the end frame ``1 + int(fps * duration)`` (one later if
  that frame is taken). ``--datUsePrestonBlair`` renames the shapes. Here, and only here, this module is
  not Rhubarb's: Rhubarb puts each cue on the frame its start falls in and skips a cue whose frame is
  taken, so at low rates p, b and m vanish; this writes the shapes :func:`.cues.frame_shapes` gives the
  frames (the cue covering most of each, every closure on a frame of its own), the same frames the
  talking mouth and the film draw. Where each new cue covers most of the frame its start falls in, the
  two files are the same.
"""
from __future__ import annotations

import json
import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path

from .cues import (ALL_SHAPES, EXTENDED_FALLBACK, MouthCue, MouthCues, cue_problems, frame_shapes, frames_for,
                   merge_equal, restrict_shapes)

log = logging.getLogger(__name__)

FORMATS = ("json", "tsv", "dat", "xml")
# Rhubarb's --datUsePrestonBlair names (README.adoc, DatExporter.cpp); OpenToonz only knows these
PRESTON_BLAIR_NAMES = {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U", "G": "FV", "H": "L",
                       "X": "rest"}
# Rhubarb refuses other DAT frame rates: below 24 fps its cues get dropped, above 100 there is nothing to gain
DAT_FRAME_RATES = (24.0, 100.0)
_EPSILON = 1e-6  # float seconds such as 0.29 * 100 = 28.999999999999996 still truncate to 29


# -- time ----------------------------------------------------------------------------------------------

def _round_cs(seconds: float) -> int:
    return int(math.floor(seconds * 100 + 0.5))


def _truncate_cs(seconds: float) -> int:
    return int(math.floor(seconds * 100 + _EPSILON))


def _fmt(cs: int) -> str:
    """Rhubarb's ``{:.2f}`` of a whole number of centiseconds, done in integers so it is exact."""
    return f"{cs // 100}.{cs % 100:02d}"


def _closed_shape(extended_shapes: str) -> str:
    """X, or A for a shape set without X: what Rhubarb writes for the closed mouth at the end."""
    return "X" if "X" in extended_shapes.upper() else EXTENDED_FALLBACK["X"]


def _centisecond_cues(cues: MouthCues) -> tuple[list[tuple[int, int, str]], int]:
    """The cues as Rhubarb's timeline would hold them: (start_cs, end_cs, shape), plus the duration in cs."""
    problems = cue_problems(cues)
    if problems:
        log.warning("writing mouth cues that are not well-formed: %s", "; ".join(problems))
    unknown = sorted({c.shape for c in cues.cues} - set(ALL_SHAPES))
    if unknown:
        raise ValueError(f"mouth shapes {unknown} are not Rhubarb shapes ({' '.join(ALL_SHAPES)})")
    duration = _truncate_cs(cues.duration)
    snapped = []
    for cue in restrict_shapes(cues.cues, cues.extended_shapes):
        start, end = min(_round_cs(cue.start), duration), min(_round_cs(cue.end), duration)
        if end > start:
            snapped.append(MouthCue(start, end, cue.shape))
    return [(int(c.start), int(c.end), c.shape) for c in merge_equal(snapped)], duration


def _with_dummy(timed: list[tuple[int, int, str]], extended_shapes: str) -> list[tuple[int, int, str]]:
    """Rhubarb's JSON and XML always hold at least one cue: a zero-length closed mouth when empty."""
    return timed or [(0, 0, _closed_shape(extended_shapes))]


# -- writers -------------------------------------------------------------------------------------------

def _json_string(text: str) -> str:
    """Rhubarb's own escaping: UTF-16 code units, named escapes, ``\\u00xx`` below 0x20 and from 0x80 up.

    Not json.dumps: that also escapes DEL (0x7f), which Rhubarb leaves alone.
    """
    named = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    utf16 = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(utf16), 2):
        unit = (utf16[i] << 8) | utf16[i + 1]
        char = chr(unit)
        if char in named:
            out.append(named[char])
        elif unit < 0x20 or unit >= 0x80:
            out.append(f"\\u{unit:04x}")
        else:
            out.append(char)
    return "".join(out)


def to_rhubarb_json(cues: MouthCues) -> str:
    """Rhubarb's ``-f json`` output (JsonExporter.cpp): fixed two-space layout, one cue per line."""
    timed, duration = _centisecond_cues(cues)
    lines = [
        "{",
        '  "metadata": {',
        f'    "soundFile": "{_json_string(cues.sound_file)}",',
        f'    "duration": {_fmt(duration)}',
        "  },",
        '  "mouthCues": [',
        ",\n".join(f'    {{ "start": {_fmt(s)}, "end": {_fmt(e)}, "value": "{v}" }}'
                   for s, e, v in _with_dummy(timed, cues.extended_shapes)),
        "  ]",
        "}",
    ]
    return "\n".join(lines) + "\n"


def to_tsv(cues: MouthCues) -> str:
    """Rhubarb's ``-f tsv`` output (TsvExporter.cpp): start times, then the end time with the closed mouth.

    Unlike JSON there is no dummy cue: an empty animation is just the closing line.
    """
    timed, duration = _centisecond_cues(cues)
    lines = [f"{_fmt(s)}\t{v}" for s, _, v in timed]
    lines.append(f"{_fmt(duration)}\t{_closed_shape(cues.extended_shapes)}")
    return "\n".join(lines) + "\n"


def _dat_frame(cs: int, frame_rate: float) -> int:
    # Rhubarb: 1 + static_cast<int>(frameRate * seconds), seconds = centiseconds / 100 as a double
    return 1 + int(frame_rate * (cs / 100))


def to_dat(cues: MouthCues, frame_rate: float = 24, prestonBlair: bool = False) -> str:
    """Moho switch data in the layout of Rhubarb's ``-f dat [--datFrameRate N] [--datUsePrestonBlair]``.

    Frames are 1-based, with a line wherever the shape changes. Which shape a frame gets is
    :func:`.cues.frame_shapes` on the cues as Rhubarb's timeline holds them (centiseconds, shapes the set
    lacks mapped): the cue covering most of the frame, and every closure on a frame of its own, so a p, b
    or m shorter than a frame is never lost (Rhubarb drops any cue whose start shares a frame with an
    earlier one). Rhubarb refuses frame rates outside 24-100 fps; here they are allowed, with a warning,
    because animating on twos (12 fps) is a real use.
    """
    if not frame_rate > 0:
        raise ValueError(f"DAT frame rate must be positive, not {frame_rate}")
    if not DAT_FRAME_RATES[0] <= frame_rate <= DAT_FRAME_RATES[1]:
        log.warning("DAT at %s fps: Rhubarb only writes %g-%g fps; short shapes other than closures may get no "
                    "frame", frame_rate, *DAT_FRAME_RATES)
    timed, duration = _centisecond_cues(cues)
    snapped = MouthCues(tuple(MouthCue(s / 100, e / 100, v) for s, e, v in timed), duration / 100)

    def name(shape: str) -> str:
        return PRESTON_BLAIR_NAMES[shape] if prestonBlair else shape

    lines = ["MohoSwitch1"]
    last_frame, previous = 0, None
    for index, shape in enumerate(frame_shapes(snapped, frame_rate, frames_for(snapped.duration, frame_rate))):
        if shape != previous:
            lines.append(f"{index + 1} {name(shape)}")
            last_frame, previous = index + 1, shape
    frame = max(_dat_frame(duration, frame_rate), last_frame + 1)
    lines.append(f"{frame} {name(_closed_shape(cues.extended_shapes))}")
    return "\n".join(lines) + "\n"


def _xml_text(text: str) -> str:
    """Boost property_tree's entity encoding (what Rhubarb's XmlExporter uses): five entities, and an
    all-spaces text keeps its first space as ``&#32;``."""
    if text and not text.strip(" "):
        return "&#32;" + text[1:]
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;")):
        text = text.replace(raw, entity)
    return text


def to_xml(cues: MouthCues) -> str:
    """Rhubarb's ``-f xml`` output (XmlExporter.cpp, written by boost's write_xml with two-space indent)."""
    timed, duration = _centisecond_cues(cues)
    sound = f"<soundFile>{_xml_text(cues.sound_file)}</soundFile>" if cues.sound_file else "<soundFile/>"
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<rhubarbResult>",
        "  <metadata>",
        f"    {sound}",
        f"    <duration>{_fmt(duration)}</duration>",
        "  </metadata>",
        "  <mouthCues>",
        *(f'    <mouthCue start="{_fmt(s)}" end="{_fmt(e)}">{v}</mouthCue>'
          for s, e, v in _with_dummy(timed, cues.extended_shapes)),
        "  </mouthCues>",
        "</rhubarbResult>",
    ]
    return "\n".join(lines) + "\n"


def write_cues(cues: MouthCues, path_or_format: str | Path, **options) -> str:
    """Render ``cues`` in one format and return the text; given a file path, also write it there.

    ``path_or_format`` is a format name (``json``, ``tsv``, ``dat``, ``xml``) or a path whose suffix names
    one (``.txt`` counts as TSV, Rhubarb's default format). ``options`` go to :func:`to_dat`.
    """
    target = path_or_format
    if isinstance(target, str) and target.lower() in FORMATS:
        fmt, path = target.lower(), None
    else:
        path = Path(target)
        fmt = {"txt": "tsv"}.get(path.suffix.lower().lstrip("."), path.suffix.lower().lstrip("."))
    writers = {"json": to_rhubarb_json, "tsv": to_tsv, "xml": to_xml, "dat": to_dat}
    if fmt not in writers:
        raise ValueError(f"unknown lip-sync format {str(target)!r}: use one of {', '.join(FORMATS)} "
                         "or a file ending in .json, .tsv, .txt, .dat or .xml")
    if options and fmt != "dat":
        raise ValueError(f"options {sorted(options)} only apply to the dat format")
    text = writers[fmt](cues, **options)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        log.info("wrote %d mouth cues as %s to %s", len(cues.cues), fmt, path)
    return text


# -- parsers -------------------------------------------------------------------------------------------

def _shape(value: str, where: str) -> str:
    shape = value.strip()
    if shape not in ALL_SHAPES:
        raise ValueError(f"{where}: {shape!r} is not a Rhubarb mouth shape ({' '.join(ALL_SHAPES)})")
    return shape


def parse_rhubarb_json(text: str, engine: str = "rhubarb") -> MouthCues:
    """Read Rhubarb's JSON (from the binary or :func:`to_rhubarb_json`) back into cues.

    The zero-length dummy cue Rhubarb writes for an empty animation is dropped, so empty stays empty.
    """
    try:
        data = json.loads(text)
        metadata = data.get("metadata", {})
        raw = data["mouthCues"]
    except (ValueError, AttributeError, KeyError, TypeError) as e:
        raise ValueError(f"not Rhubarb JSON (need an object with mouthCues): {e}") from None
    cues = []
    for i, item in enumerate(raw):
        try:
            start, end = float(item["start"]), float(item["end"])
            cues.append(MouthCue(start, end, _shape(str(item["value"]), f"mouth cue {i}")))
        except (KeyError, TypeError) as e:
            raise ValueError(f"mouth cue {i} needs start, end and value: {e}") from None
    cues = [c for c in cues if c.end > c.start]
    duration = float(metadata.get("duration", cues[-1].end if cues else 0.0))
    return MouthCues(tuple(cues), duration, sound_file=str(metadata.get("soundFile", "")), engine=engine)


def parse_xml(text: str, engine: str = "rhubarb") -> MouthCues:
    """Read Rhubarb's XML back into cues (the zero-length dummy cue is dropped, as for JSON)."""
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as e:
        raise ValueError(f"not Rhubarb XML: {e}") from None
    cues = []
    for i, element in enumerate(root.iterfind("mouthCues/mouthCue")):
        try:
            start, end = float(element.attrib["start"]), float(element.attrib["end"])
        except (KeyError, ValueError) as e:
            raise ValueError(f"mouthCue {i} needs numeric start and end: {e}") from None
        cues.append(MouthCue(start, end, _shape(element.text or "", f"mouthCue {i}")))
    cues = [c for c in cues if c.end > c.start]
    duration_text = root.findtext("metadata/duration")
    duration = float(duration_text) if duration_text else (cues[-1].end if cues else 0.0)
    return MouthCues(tuple(cues), duration, sound_file=root.findtext("metadata/soundFile") or "", engine=engine)


def parse_tsv(text: str, duration: float | None = None, engine: str = "rhubarb") -> MouthCues:
    """Read Rhubarb's TSV: each line starts a cue that ends where the next begins; the last line only
    marks the end. TSV has no metadata, so pass the clip's ``duration`` where known (it then becomes the
    cues' duration; the last cue still ends at the file's end line)."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):  # Rhubarb on Windows writes CRLF
        if not line.strip():
            continue
        parts = line.strip().split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            raise ValueError(f"TSV line {number}: expected 'seconds<TAB>shape', got {line!r}")
        try:
            seconds = float(parts[0])
        except ValueError:
            raise ValueError(f"TSV line {number}: {parts[0]!r} is not a time in seconds") from None
        rows.append((seconds, _shape(parts[1], f"TSV line {number}")))
    if not rows:
        raise ValueError("empty TSV: Rhubarb always writes at least the closing line")
    for (a, _), (b, _) in zip(rows, rows[1:]):
        if b < a:
            raise ValueError(f"TSV times go backwards ({a} then {b})")
    cues = [MouthCue(a, b, shape) for (a, shape), (b, _) in zip(rows, rows[1:]) if b > a]
    return MouthCues(tuple(cues), rows[-1][0] if duration is None else float(duration), engine=engine)

