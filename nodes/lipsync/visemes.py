"""Lip sync for 3D rigs: Oculus visemes with ARKit blendshape weights, from mouth cues or from phones.

Why both vocabularies: the 15 Oculus (Meta OVRLipSync) visemes are what game engines and avatar
tools key on, and ARKit's 52 blendshapes are what most face rigs (Apple, Unreal MetaHuman, VRoid,
Ready Player Me, many Blender rigs) actually have. Each entry names the viseme and gives the weights
to set, so a rig with either vocabulary can use the file without a table of its own.

Output (``animstudio-visemes-1``)::

    {"format": "animstudio-visemes-1", "duration": 1.2,
     "visemes": [{"start": 0.0, "end": 0.05, "viseme": "sil", "weights": {"jawOpen": 0.0, ...}}, ...]}

Entries are contiguous from 0 to ``duration`` and every entry lists every channel in
:data:`ARKIT_CHANNELS` (zeros included), so keying one entry fully sets the mouth.

From Rhubarb shapes (:data:`SHAPE_VISEME`), one per cue: A→PP, B→SS (clenched teeth), C→E, D→aa, E→oh,
F→ou, G→FF, H→nn (L), X→sil. Phones are more precise (TH, CH, kk, RR have no Rhubarb shape), so when
ARPAbet phone timings are given they are used instead (:data:`PHONE_VISEME`); time the phones do not
cover is silence. IPA timings (from a voice's own phoneme events, any language) go through the same table
by way of each phone's nearest ARPAbet phone (:func:`ipa_phone_viseme`).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Iterable, Sequence

from .cues import MouthCues
from .ipa import group_phones, to_arpabet

log = logging.getLogger(__name__)

FORMAT = "animstudio-visemes-1"
VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")

SHAPE_VISEME = {"A": "PP", "B": "SS", "C": "E", "D": "aa", "E": "oh", "F": "ou", "G": "FF", "H": "nn", "X": "sil"}

# ARPAbet without stress digits → Oculus viseme. Approximations: HH takes kk (open, tongue back; the
# vowel after it shapes the lips anyway), NG is velar like K G, ER and R share RR, diphthongs take their
# first, longer part (AY aa, EY E, OW oh, OY oh, AW aa), Y is the ih glide, W the ou glide.
PHONE_VISEME = {
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AE": "aa", "AH": "aa", "AW": "aa", "AY": "aa",
    "EH": "E", "EY": "E",
    "IH": "ih", "IY": "ih", "Y": "ih",
    "AO": "oh", "OW": "oh", "OY": "oh",
    "UH": "ou", "UW": "ou", "W": "ou",
}

# The ARKit mouth channels this export drives (left/right pairs get equal weights).
ARKIT_CHANNELS = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthRollLower", "mouthRollUpper", "mouthPressLeft", "mouthPressRight", "tongueOut",
)


def _both(side: str, value: float) -> dict[str, float]:
    return {f"{side}Left": value, f"{side}Right": value}


# Viseme → ARKit weights (unlisted channels are 0). Hand-tuned, deliberately moderate, so a blend between
# neighbours never overdrives a rig. ARKit's mouthClose closes the lips *against* jawOpen, so it never
# exceeds jawOpen here: PP is a slightly dropped jaw with the lips pressed shut.
VISEME_WEIGHTS: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"jawOpen": 0.08, "mouthClose": 0.08, **_both("mouthPress", 0.5), "mouthRollLower": 0.2,
           "mouthRollUpper": 0.1},
    "FF": {"jawOpen": 0.1, "mouthRollLower": 0.6, **_both("mouthUpperUp", 0.25)},
    "TH": {"jawOpen": 0.18, "tongueOut": 0.35, **_both("mouthUpperUp", 0.1), **_both("mouthLowerDown", 0.1)},
    "DD": {"jawOpen": 0.2, **_both("mouthStretch", 0.2), **_both("mouthLowerDown", 0.2)},
    "kk": {"jawOpen": 0.25, **_both("mouthStretch", 0.25), **_both("mouthLowerDown", 0.15)},
    "CH": {"jawOpen": 0.15, "mouthFunnel": 0.5, "mouthPucker": 0.2, **_both("mouthUpperUp", 0.3),
           **_both("mouthLowerDown", 0.3)},
    "SS": {"jawOpen": 0.08, **_both("mouthStretch", 0.45), **_both("mouthUpperUp", 0.2),
           **_both("mouthLowerDown", 0.25), **_both("mouthSmile", 0.1)},
    "nn": {"jawOpen": 0.2, **_both("mouthStretch", 0.15), **_both("mouthLowerDown", 0.1)},
    "RR": {"jawOpen": 0.15, "mouthFunnel": 0.3, "mouthPucker": 0.3},
    "aa": {"jawOpen": 0.7, **_both("mouthLowerDown", 0.3), **_both("mouthUpperUp", 0.1), **_both("mouthStretch", 0.1)},
    "E": {"jawOpen": 0.4, **_both("mouthStretch", 0.35), **_both("mouthLowerDown", 0.3),
          **_both("mouthUpperUp", 0.15), **_both("mouthSmile", 0.1)},
    "ih": {"jawOpen": 0.25, **_both("mouthStretch", 0.4), **_both("mouthSmile", 0.2), **_both("mouthUpperUp", 0.15),
           **_both("mouthLowerDown", 0.2)},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.6, "mouthPucker": 0.2},
    "ou": {"jawOpen": 0.15, "mouthPucker": 0.85, "mouthFunnel": 0.4},
}

_STRESS = re.compile(r"\d+$")


def phone_viseme(phone: str) -> str:
    """The Oculus viseme of one ARPAbet phone (stress digits and case ignored); anything else is ``sil``
    (silence and noise markers such as SIL, sp, +NSN+)."""
    return PHONE_VISEME.get(_STRESS.sub("", phone.strip().upper()), "sil")


def ipa_phone_viseme(phone: str) -> str:
    """The Oculus viseme of one IPA phone (its first ARPAbet part's); ``sil`` for a pause."""
    parts = to_arpabet(phone)
    return phone_viseme(parts[0]) if parts else "sil"


def arkit_weights(viseme: str) -> dict[str, float]:
    """Every channel of :data:`ARKIT_CHANNELS` with its weight for ``viseme``."""
    table = VISEME_WEIGHTS[viseme]
    return {name: float(table.get(name, 0.0)) for name in ARKIT_CHANNELS}


def _phone_fields(phone) -> tuple[str, float, float]:
    """(phone, start, end) from a tuple or from an object with ``phone``, ``start`` and ``end``."""
    if hasattr(phone, "phone"):
        return str(phone.phone), float(phone.start), float(phone.end)
    name, start, end = phone
    return str(name), float(start), float(end)


def _track_from_phones(phones: Iterable, duration: float, phone_set: str = "arpabet") -> list[tuple[float, float, str]]:
    viseme_of = phone_viseme
    fields = [_phone_fields(p) for p in phones]
    if phone_set == "ipa":
        viseme_of, fields = ipa_phone_viseme, group_phones(fields)
    track: list[tuple[float, float, str]] = []
    cursor = 0.0
    for name, start, end in sorted(fields, key=lambda p: p[1]):
        start, end = max(start, cursor), min(end, duration)
        if end <= start:
            continue  # overlapped by an earlier phone, or past the end
        if start > cursor:
            track.append((cursor, start, "sil"))
        track.append((start, end, viseme_of(name)))
        cursor = end
    if cursor < duration:
        track.append((cursor, duration, "sil"))
    return track


def _merged(track: list[tuple[float, float, str]], digits: int = 3) -> list[tuple[float, float, str]]:
    """Times rounded to milliseconds, empty entries dropped, equal neighbours joined."""
    out: list[list] = []
    for start, end, viseme in track:
        start, end = round(start, digits), round(end, digits)
        if out:
            start = out[-1][1]  # keep contiguity after rounding
        if end <= start:
            continue
        if out and out[-1][2] == viseme:
            out[-1][1] = end
        else:
            out.append([start, end, viseme])
    return [tuple(entry) for entry in out]


def viseme_track(cues: MouthCues, phones: Sequence | None = None, phone_set: str = "arpabet") -> dict:
    """The viseme export as a dict (see the module docstring); from ``phones`` (in ``phone_set``, ``arpabet``
    or ``ipa``) when given, else from cues."""
    duration = float(cues.duration)
    if phones:
        track = _track_from_phones(phones, duration, phone_set)
    else:
        track = [(c.start, min(c.end, duration), SHAPE_VISEME[c.shape]) for c in cues.cues]
        if track and track[0][0] > 0:
            track.insert(0, (0.0, track[0][0], "sil"))
        if track and track[-1][1] < duration:
            track.append((track[-1][1], duration, "sil"))
        if not track:
            track = [(0.0, duration, "sil")]
    entries = _merged(track)
    log.debug("viseme export: %d entries from %s", len(entries), "phones" if phones else "mouth shapes")
    return {
        "format": FORMAT,
        "duration": round(duration, 3),
        "visemes": [{"start": s, "end": e, "viseme": v, "weights": arkit_weights(v)} for s, e, v in entries],
    }


def to_viseme_json(cues: MouthCues, phones: Sequence | None = None, phone_set: str = "arpabet") -> str:
    """:func:`viseme_track` as JSON text."""
    return json.dumps(viseme_track(cues, phones, phone_set), indent=2) + "\n"
