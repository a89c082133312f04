"""From timed phones to mouth cues: animation rules in the spirit of Rhubarb Lip Sync's animation stage.

Rhubarb Lip Sync (Daniel Wolf, MIT licence) inspired these rules; the code and the distance model here
are this project's own, and the constants were tuned by measuring agreement with Rhubarb 1.14.0 on
synthesised speech (``bench/lipsync_agreement.py``). In order:

1. **Allowed shapes per phone, by duration.** Each ARPAbet phone allows a set of shapes, best first.
   Short vowels are lazier than long ones (a 50 ms schwa barely opens the mouth, a 250 ms one opens
   wide), a short L borrows whatever the neighbours show while a long one shows the tongue (H), and
   consonants that the lips do not shape (T, K, S, N, ...) may take whichever shape is near at hand.
   Diphthongs move from one set to another.
2. **Plosive closures come before the release.** The lips close for P and B *before* the burst you
   hear, so a closed A is placed in a window before the phone (half of the previous segment, 40 to
   120 ms, taken from it, leading silence included), and the P or B itself may show anything. T/D and
   K/G get a similar window of their own shapes (the tongue gets into place before the release).
3. **Least effort.** Walking forward, each segment takes the allowed shape closest to where the mouth
   already is, judged from the *relaxed* form of the previous shape (an open C is already on its way
   back to B, say), so that consonants cost no needless travel.
4. **Vowel anticipation.** The mouth starts forming a vowel before it sounds: for each vowel with
   only one allowed shape, the segments up to 200 ms before it take the allowed shape closest to the
   vowel's, up to and including the first one that cannot match the vowel's basic shape.
5. **Pauses.** A silence inside speech shorter than 120 ms holds the previous shape (the mouth does
   not rest for a breath it never takes); up to 350 ms it shows the relaxed form of the previous shape
   (relaxed once more if that equals the next shape, so that the pause stays visible, and rest when
   it cannot relax further); longer ones rest (X).
6. **Timing clean-up.** Closures stay visible for at least 60 ms, cues shorter than 40 ms merge into
   the neighbour closer in shape, and wide moves get a brief in-between shape (the basic shape nearest
   the midpoint of the move).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .cues import EXTENDED_FALLBACK, MouthCue, merge_equal

# shape → (openness, rounding): the mouth's travel between shapes is the distance in this plane. H is C
# with the tongue raised (the lips alike), G is B with the teeth on the lower lip, X rests closed like A.
SHAPE_POSITION = {"X": (0.0, 0.0), "A": (0.0, 0.0), "B": (1.0, 0.0), "C": (2.0, 0.0), "D": (3.0, 0.0),
                  "E": (2.0, 1.0), "F": (1.0, 2.0), "G": (0.7, 0.0), "H": (2.0, 0.0)}

# where each shape drifts once the sound that needed it is over: the jaw half-closes, the lips unround,
# the teeth leave the lower lip; a closed mouth and a slightly open one are already at ease
RELAXED = {"A": "A", "B": "B", "C": "B", "D": "C", "E": "C", "F": "B", "G": "X", "H": "B", "X": "X"}

SPEECH_SHAPES = ("A", "B", "C", "D", "E", "F", "G", "H")   # any shape but rest: a phone the lips ignore
OPEN_SHAPES = ("B", "C", "D", "E", "F", "G", "H")          # any shape with the lips apart

# ARPAbet (stress digits removed) → allowed shapes, best first; a pair of tuples is a diphthong (the
# first set for the first 55 % of the phone). AH ER AY AW L depend on their length: ``allowed_shapes``
# decides for them (the entries here are only defaults). Plosives also get a closure window before them
# (``CLOSURE_SHAPES``).
PHONE_SHAPES: dict[str, tuple] = {
    # vowels
    "AA": ("D",), "AE": ("C",), "AH": ("C",), "AO": ("E",), "EH": ("C",), "ER": ("E",), "IH": ("B",),
    "IY": ("B",), "UH": ("F",), "UW": ("F",),
    "AW": (("C",), ("E",)), "AY": (("C",), ("B",)), "EY": (("C",), ("B",)), "OW": (("E",), ("F",)),
    "OY": (("E",), ("B",)),
    # consonants the lips form
    "M": ("A",), "F": ("G",), "V": ("G",), "W": ("F",),
    "CH": ("B", "F"), "JH": ("B", "F"), "SH": ("B", "F"), "ZH": ("B", "F"),
    "S": ("B", "F"), "Z": ("B", "F"), "TH": ("B", "F"), "DH": ("B", "F"),
    "R": ("B", "E", "F"), "Y": ("B", "C", "F"), "L": ("H",),
    "N": ("B", "C", "F", "H"), "NG": ("B", "C", "E", "F"), "HH": ("B", "C", "D", "E", "F"),
    # plosives: the closure window before them carries the shape; the release may show anything
    "P": SPEECH_SHAPES, "B": SPEECH_SHAPES,
    "T": OPEN_SHAPES, "D": OPEN_SHAPES, "K": OPEN_SHAPES, "G": OPEN_SHAPES,
}
UNKNOWN_PHONE = ("B", "C")
VOWELS = {"AA", "AE", "AH", "AO", "EH", "ER", "IH", "IY", "UH", "UW", "AW", "AY", "EY", "OW", "OY"}
# shape of the window before a plosive's release: lips shut for P B; tongue behind the teeth for T D
# (the lips barely part); back of the tongue up for K G (the lips follow the neighbours)
CLOSURE_SHAPES = {"P": ("A",), "B": ("A",), "T": ("B", "F"), "D": ("B", "F"),
                  "K": ("B", "C", "E", "F", "H"), "G": ("B", "C", "E", "F", "H")}
SILENCES = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+SMACK+", "+UH+", "+UM+", "<sil>", "<s>", "</s>"}

DIPHTHONG_SPLIT = 0.55   # share of a diphthong spent on its first shape
CLOSURE_MIN, CLOSURE_MAX = 0.04, 0.12  # plosive window: half the previous segment, clamped to these
ANTICIPATION = 0.20      # how far ahead of a vowel the mouth starts forming it
HOLD_PAUSE = 0.12        # a silence inside speech shorter than this holds the previous shape
RELAX_PAUSE = 0.35       # ... up to this it shows the relaxed previous shape; longer ones rest (X)
MIN_CUE = 0.04           # nothing shows for less than this (one frame at 25 fps)
MIN_CLOSURE = 0.06       # a closed mouth before a plosive must be seen
TWEEN_MAX = 0.08         # longest in-between shape
STEP = 0.01              # Rhubarb's centisecond grid


@dataclass(frozen=True)
class PhoneSegment:
    phone: str  # ARPAbet without stress digits, or a silence marker
    start: float
    end: float

    @property
    def silent(self) -> bool:
        return self.phone in SILENCES


@dataclass
class _Target:
    """A stretch of time and the shapes allowed in it (a phone, half a diphthong, a closure window, a silence)."""

    start: float
    end: float
    allowed: tuple[str, ...]
    vowel: bool = False  # a vowel with a single allowed shape: the mouth anticipates it


def _distance(a: str, b: str) -> float:
    (x1, y1), (x2, y2) = SHAPE_POSITION[a], SHAPE_POSITION[b]
    return math.hypot(x1 - x2, y1 - y2)


def _basic(shape: str) -> str:
    """The basic shape (A–F) an extended one stands in for, as when a mouth set lacks G, H or X."""
    return EXTENDED_FALLBACK.get(shape, shape)


def _closest(reference: str, allowed: tuple[str, ...]) -> str:
    """The allowed shape least far from ``reference``; ties go to the shape listed first."""
    return min(enumerate(allowed), key=lambda item: (_distance(reference, item[1]), item[0]))[1]


def allowed_shapes(phone: str, seconds: float) -> tuple:
    """Shapes allowed for ``phone`` lasting ``seconds``, best first (a pair of tuples for a diphthong).

    Length matters for vowels the jaw does not hold: a very short AH or ER is barely voiced (B or C), a
    long AH opens wide (D), a long AY or AW starts wider; a short L is carried by its neighbours' shapes,
    a long one shows the tongue (H).
    """
    if phone == "AH":
        return ("B", "C") if seconds < 0.06 else ("C",) if seconds < 0.20 else ("D",)
    if phone == "ER":
        return ("B", "C") if seconds < 0.07 else ("E",)
    if phone == "AY":
        return (("C",), ("B",)) if seconds < 0.20 else (("D",), ("B",))
    if phone == "AW":
        return (("C",), ("E",)) if seconds < 0.30 else (("D",), ("E",))
    if phone == "L":
        return ("B", "E", "F", "H") if seconds < 0.20 else ("H",)
    return PHONE_SHAPES.get(phone, UNKNOWN_PHONE)


def _with_silences(phones: list[PhoneSegment], duration: float) -> list[PhoneSegment]:
    """Phones in time order, overlaps trimmed, and gaps (before, between, after) filled with silence."""
    phones = sorted((p for p in phones if p.end > p.start), key=lambda p: p.start)
    filled: list[PhoneSegment] = []
    at = 0.0
    for seg in phones:
        if seg.start > at + 1e-6:
            filled.append(PhoneSegment("SIL", at, seg.start))
        filled.append(PhoneSegment(seg.phone, max(seg.start, at), seg.end))
        at = max(at, seg.end)
    if duration > at + 1e-6:
        filled.append(PhoneSegment("SIL", at, duration))
    return [s for s in filled if s.end > s.start]


def _targets(filled: list[PhoneSegment]) -> list[_Target]:
    """Split diphthongs, attach allowed shapes, and carve a closure window out of what precedes each plosive."""
    out: list[_Target] = []
    previous_seconds = 0.0
    for seg in filled:
        seconds = seg.end - seg.start
        if seg.silent:
            out.append(_Target(seg.start, seg.end, ("X",)))
            previous_seconds = seconds
            continue
        phone = seg.phone.rstrip("012").upper()
        if phone in CLOSURE_SHAPES:
            window = min(max(previous_seconds / 2, CLOSURE_MIN), CLOSURE_MAX)
            window_start = max(0.0, round(seg.start - window, 6))
            while out and out[-1].end > window_start + 1e-9:  # the window takes time from what came before
                if out[-1].start >= window_start - 1e-9:
                    out.pop()
                else:
                    out[-1].end = window_start
                    break
            if seg.start > window_start + 1e-9:
                out.append(_Target(window_start, seg.start, CLOSURE_SHAPES[phone]))
        allowed = allowed_shapes(phone, seconds)
        if isinstance(allowed[0], tuple):
            middle = seg.start + seconds * DIPHTHONG_SPLIT
            out.append(_Target(seg.start, middle, allowed[0], phone in VOWELS and len(allowed[0]) == 1))
            out.append(_Target(middle, seg.end, allowed[1], phone in VOWELS and len(allowed[1]) == 1))
        else:
            out.append(_Target(seg.start, seg.end, allowed, phone in VOWELS and len(allowed) == 1))
        previous_seconds = seconds
    return [t for t in out if t.end > t.start + 1e-9]


def _choose_shapes(targets: list[_Target]) -> list[str]:
    """Least effort, walking forward, with vowel anticipation walking back from each definite vowel.

    Each segment takes the allowed shape closest to the relaxed form of the shape before it (after a
    definite vowel, to the vowel itself, which the mouth is holding). At each definite vowel the
    segments up to ``ANTICIPATION`` before it are revisited: each takes the allowed shape closest to
    its successor's, until one cannot share the vowel's basic shape, and never reaching back past the
    previous anticipated vowel (its own anticipation stands).
    """
    shapes: list[str] = []
    reference = "X"
    previous_vowel_start: float | None = None
    for i, target in enumerate(targets):
        shape = _closest(reference, target.allowed)
        shapes.append(shape)
        if target.vowel:
            toward = shape
            for j in range(i - 1, -1, -1):
                earlier = targets[j]
                if previous_vowel_start is not None and earlier.start < previous_vowel_start + 1e-9:
                    break
                if target.start - earlier.start > ANTICIPATION + 1e-9:
                    break
                shapes[j] = toward = _closest(toward, earlier.allowed)
                if _basic(toward) != _basic(shape):
                    break
            previous_vowel_start = target.start
            reference = shape
        else:
            reference = RELAXED[shape]
    return shapes


def _pauses(cues: list[MouthCue], speech_start: float, speech_end: float) -> list[MouthCue]:
    """Silences inside speech: hold the previous shape when short, relax it when middling, rest (X) when long."""
    out = list(cues)
    for i in range(1, len(out) - 1):
        cue = out[i]
        if cue.shape != "X" or cue.start <= speech_start or cue.end >= speech_end:
            continue
        previous, following = out[i - 1].shape, out[i + 1].shape
        if cue.seconds < HOLD_PAUSE:
            shape = previous
        elif cue.seconds <= RELAX_PAUSE:
            shape = RELAXED[previous]
            if shape == following:  # relaxing onto the next shape would hide the pause: relax further,
                shape = RELAXED[shape] if RELAXED[shape] != shape else "X"  # or rest if it cannot
        else:
            shape = "X"
        out[i] = MouthCue(cue.start, cue.end, shape)
    return merge_equal(out)


def _closures(cues: list[MouthCue]) -> list[MouthCue]:
    """A closed mouth (A) shorter than MIN_CLOSURE after speech takes time from the cue before it."""
    out = list(cues)
    for i in range(1, len(out)):
        cue, before = out[i], out[i - 1]
        missing = MIN_CLOSURE - cue.seconds
        if cue.shape == "A" and missing > 0 and before.shape not in ("A", "X"):
            take = min(missing, max(0.0, before.seconds - MIN_CUE))
            if take > 0:
                out[i - 1] = MouthCue(before.start, before.end - take, before.shape)
                out[i] = MouthCue(cue.start - take, cue.end, cue.shape)
    return out


def _minimum_durations(cues: list[MouthCue]) -> list[MouthCue]:
    """Merge cues shorter than MIN_CUE into the neighbour whose shape is closer (ties: the earlier one)."""
    out = merge_equal(cues)
    changed = True
    while changed and len(out) > 1:
        changed = False
        for i, cue in enumerate(out):
            if cue.seconds >= MIN_CUE - 1e-9:
                continue
            left = out[i - 1] if i else None
            right = out[i + 1] if i + 1 < len(out) else None
            closer_right = right is not None and left is not None \
                and _distance(right.shape, cue.shape) < _distance(left.shape, cue.shape)
            if left is None or closer_right:
                out[i + 1] = MouthCue(cue.start, right.end, right.shape)
            else:
                out[i - 1] = MouthCue(left.start, cue.end, left.shape)
            del out[i]
            out = merge_equal(out)
            changed = True
            break
    return out


def _in_between(first: str, second: str) -> tuple[str, str] | None:
    """(shape, where) for a move long enough to need a brief in-between shape, else None.

    A geometric rule: when the mouth travels far (distance ≥ 2.5 in the openness/rounding plane, e.g.
    wide open to closed), it passes through the basic shape nearest the midpoint of the two, shown
    across the boundary. Opening from rest needs nothing: an onset opens the mouth at once.
    """
    if first in ("X", "A") and second not in ("X", "A"):
        return None
    if _distance(first, second) < 2.5:
        return None
    (x1, y1), (x2, y2) = SHAPE_POSITION[first], SHAPE_POSITION[second]
    mid = ((x1 + x2) / 2, (y1 + y2) / 2)
    candidates = [s for s in "ABCDEF" if s not in (first, second)]
    shape = min(candidates, key=lambda s: (math.hypot(SHAPE_POSITION[s][0] - mid[0], SHAPE_POSITION[s][1] - mid[1]), s))
    return shape, "centered"


def _tweens(cues: list[MouthCue]) -> list[MouthCue]:
    """Insert in-between shapes (see ``_in_between``), a third or a quarter of the cue they borrow from."""
    out = list(cues)
    i = 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        tween = _in_between(a.shape, b.shape)
        if tween is None:
            i += 1
            continue
        shape, where = tween
        if where == "early":  # taken from the end of the first cue
            length = min(math.floor(a.seconds / 3 / STEP + 1e-9) * STEP, TWEEN_MAX)
            start = a.end - length
        elif where == "late":  # taken from the start of the second cue
            length = min(math.floor(b.seconds / 3 / STEP + 1e-9) * STEP, TWEEN_MAX)
            start = b.start
        else:  # across the boundary, half from each
            length = min(math.floor(min(a.seconds, b.seconds) / 4 / STEP + 1e-9) * STEP, TWEEN_MAX)
            start = a.end - length / 2
        if length < MIN_CUE - 1e-9:
            i += 1
            continue
        end = start + length
        pieces = [MouthCue(a.start, start, a.shape), MouthCue(start, end, shape), MouthCue(end, b.end, b.shape)]
        out[i:i + 2] = [p for p in pieces if p.end > p.start + 1e-9]
        i += 2
    return merge_equal(out)


def _quantize(cues: list[MouthCue], duration: float) -> list[MouthCue]:
    """Cue boundaries on Rhubarb's centisecond grid; the first starts at 0, the last ends at ``duration``
    (phones running past the end are cut there)."""
    bounds = [0.0] + [min(round(round(c.end / STEP) * STEP, 6), duration) for c in cues[:-1]] + [duration]
    out = [MouthCue(bounds[i], bounds[i + 1], c.shape) for i, c in enumerate(cues) if bounds[i + 1] > bounds[i] + 1e-9]
    return merge_equal(out)


def phones_to_cues(phones: list[PhoneSegment], duration: float) -> list[MouthCue]:
    """Mouth cues covering ``[0, duration]`` for timed ARPAbet phones (silence markers allowed anywhere).

    Contiguous, on the 0.01 s grid (the last cue ends at ``duration``), shapes from A–H and X, and
    deterministic: the same phones always give the same cues.
    """
    filled = _with_silences(phones, duration)
    spoken = [s for s in filled if not s.silent]
    if not spoken:
        return [MouthCue(0.0, duration, "X")]
    targets = _targets(filled)
    shapes = _choose_shapes(targets)
    cues = merge_equal(MouthCue(t.start, t.end, shape) for t, shape in zip(targets, shapes))
    cues = _pauses(cues, spoken[0].start, spoken[-1].end)
    cues = _closures(cues)
    cues = _minimum_durations(cues)
    cues = _tweens(cues)
    return _minimum_durations(_quantize(cues, duration))
