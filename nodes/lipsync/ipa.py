"""IPA phones → Rhubarb mouth shapes, one mapping for every language a voice speaks.

Why through ARPAbet: :mod:`.shapes` already holds the animation rules (allowed shapes per phone and
duration, closure windows before plosives, least effort, vowel anticipation, pauses, minimum durations,
tweens), tuned against Rhubarb on English. Rather than a second rule set, each IPA phone is mapped to the
*nearest ARPAbet phone by what the mouth does* (lips closed, teeth on lip, rounding, jaw opening, tongue
tip or back), and the ARPAbet phones go through :func:`.shapes.phones_to_cues` unchanged. So:

* English cues from a voice's own phones agree with the pocketsphinx aligner's (same phones, same rules);
* every language gets the same timing rules: a Russian п and a Korean ㅂ close the lips before their
  release exactly like an English P;
* the approximations are in one table (:data:`CONSONANTS`, :data:`VOWELS`), not spread over rules.

How a phone name is read (:func:`to_arpabet`): stress marks, length marks, tone letters and digits,
tie bars and combining diacritics (nasal tilde, syllabic, dental, ...) are dropped; a trailing
modifier letter (ʲ ʷ ʰ ᵝ, any Unicode "Lm" letter) is dropped too, but a modifier *alone* (espeak gives Russian palatalisation ʲ
as its own event) becomes the glide it stands for, except right before a vowel, whose onset it is (the vowel starts
there). A few symbols read differently by language (:data:`LANGUAGE_PHONES`): Russian's reduced ʌ/ɐ is open. What is left is split into symbols: known affricates
(tʃ dʒ ts dz tɕ dʑ ʈʂ pf ...) and closing diphthongs with an ARPAbet twin (aɪ→AY, aʊ→AW, eɪ→EY,
oʊ/əʊ→OW, ɔɪ→OY) stay whole; any other vowel sequence (ie, uo, ju, ɪə) is split into its parts, each
getting a share of the phone's time. Openness and rounding decide the vowels: open a ɑ → AA (D, wide),
a short æ a → AE (C), ɐ ə ʌ → AH (lazy when short, wide when long), spread e ɛ → EH (C), i ɪ ɯ ɨ → IY/IH
(B), rounded o ɔ œ ɒ → AO (E), close rounded u ʊ y ʏ ø ɵ ʉ → UW/UH (F). Consonants by place: bilabials
p b m ɓ ʙ (and the bilabial fricatives ɸ β, whose lips nearly touch, as M) close the lips (A);
labiodentals f v ɱ ʋ show G; laterals l ɫ ɭ ʎ are L (H when long); rhotics r ɾ ɹ ɻ ʀ are R; the
uvular/velar fricatives (ʁ χ x ɣ) and h are HH (anything open); other tongue consonants take T D K G
S Z SH ZH N NG, whose shapes follow the neighbours.

Silences: espeak's pauses (its ``_`` and ``_:`` phonemes have no IPA, so their events come with an
empty name), ``_`` names, word and phrase boundaries (``|``, ``||``) and punctuation (Piper reports
``,`` ``.`` ``?`` as phones) become SIL, so the pause rules of :mod:`.shapes` apply (a long one rests,
X). espeak's language-switch events (``(en)`` inside Japanese text) are dropped. Piper reports *one codepoint per phone*: a stress
mark or diacritic alone is folded into the phone it belongs to, a space (a word boundary, not a pause)
is shared between its neighbours, and adjacent vowels that form a closing diphthong are joined
(:func:`group_phones`).
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from .shapes import DIPHTHONG_SPLIT, PhoneSegment

log = logging.getLogger(__name__)

PHONE_SET = "ipa"
SILENCE = "SIL"      # the ARPAbet silence marker :mod:`.shapes` knows
PAUSE = "_"          # espeak's own name for a pause, used for the pauses grouping makes

STRESS = set("ˈˌ'")
LENGTH = set("ːˑ:")
TONES = set("˥˦˧˨˩˩˥0123456789")
TIES = set("͜͡‿")
SILENCE_NAMES = {"", "_", "_:", "_!", "_^_", "|", "||", "‖", "#", "-"}
PUNCTUATION = set(",.;:!?¡¿…—–\"«»()[]{}")
# a modifier letter standing alone → the glide it stands for (espeak gives palatalisation as "ʲ")
LONE_MODIFIER = {"ʲ": "Y", "ʷ": "W", "ʰ": "HH", "ʱ": "HH", "ˠ": "HH", "ˤ": "HH", "ʼ": "HH"}
MODIFIERS = set(LONE_MODIFIER) | set("ⁿˡʳ˞")
LANGUAGE_SWITCH = re.compile(r"^\([a-z]{2,3}(-[a-z0-9]+)*\)$")
# espeak's own marks that are not IPA but turn up in its names ("s." in cmn, "ə-" in fr, "@" variants)
NON_IPA = set(".-@^`~\"")  # espeak's marks inside names ("u\"" is Russian's fronted u after a soft consonant)

# IPA consonant → nearest ARPAbet phone (by what the lips and tongue show)
CONSONANTS: dict[str, str] = {
    # bilabial: lips shut (P B carry a closure window, M is closed throughout)
    "p": "P", "b": "B", "m": "M", "ɓ": "B", "ʙ": "B", "ɸ": "M", "β": "M", "ʘ": "P",
    # labiodental: teeth on the lower lip
    "f": "F", "v": "V", "ɱ": "V", "ʋ": "V", "ⱱ": "V",
    # dental / alveolar / retroflex / palatal tongue consonants
    "θ": "TH", "ð": "DH", "t": "T", "d": "D", "ʈ": "T", "ɖ": "D", "c": "K", "ɟ": "G",
    "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "ɕ": "SH", "ʑ": "ZH", "ʂ": "SH", "ʐ": "ZH", "ç": "HH",
    "ʝ": "Y", "ɬ": "L", "ɮ": "L",
    "n": "N", "ɲ": "N", "ɳ": "N", "ŋ": "NG", "ɴ": "NG",
    "l": "L", "ɫ": "L", "ɭ": "L", "ʎ": "L", "ʟ": "L", "ɺ": "L",
    "r": "R", "ɾ": "R", "ɹ": "R", "ɻ": "R", "ʀ": "R", "ɽ": "R",
    "j": "Y", "ɰ": "Y", "w": "W", "ʍ": "W", "ɥ": "W",
    # velar / uvular / pharyngeal / glottal: the lips follow the neighbours
    "k": "K", "g": "G", "ɡ": "G", "q": "K", "ɢ": "G", "ʔ": "HH",
    "x": "HH", "ɣ": "HH", "χ": "HH", "ʁ": "HH", "ħ": "HH", "ʕ": "HH", "h": "HH", "ɦ": "HH", "ɧ": "SH",
}
# two-symbol consonants read as one
AFFRICATES: dict[str, tuple[str, ...]] = {
    "tʃ": ("CH",), "dʒ": ("JH",), "tɕ": ("CH",), "dʑ": ("JH",), "ʈʂ": ("CH",), "ɖʐ": ("JH",),
    "ts": ("CH",), "dz": ("JH",), "tʂ": ("CH",), "dʐ": ("JH",), "pf": ("P", "F"), "bv": ("B", "V"),
    "kp": ("P",), "ɡb": ("B",), "gb": ("B",),
}
# IPA vowel → ARPAbet monophthong (short, long)
VOWELS: dict[str, tuple[str, str]] = {
    "i": ("IY", "IY"), "ɪ": ("IH", "IY"), "ɨ": ("IH", "IH"), "ɯ": ("IH", "IH"), "ɘ": ("AH", "AH"),
    "e": ("EH", "EH"), "ɛ": ("EH", "EH"), "ɜ": ("ER", "ER"), "ɝ": ("ER", "ER"), "ɚ": ("ER", "ER"),
    "ə": ("AH", "AH"), "ɐ": ("AH", "AH"), "ʌ": ("AH", "AH"), "ɤ": ("AH", "AH"),
    "æ": ("AE", "AE"), "a": ("AE", "AA"), "ɶ": ("AA", "AA"), "ɑ": ("AA", "AA"), "ä": ("AA", "AA"),
    "ɒ": ("AO", "AO"), "ɔ": ("AO", "AO"), "o": ("AO", "AO"), "œ": ("AO", "AO"), "ɞ": ("AO", "AO"),
    "ø": ("UH", "UW"), "ɵ": ("UH", "UH"), "ʏ": ("UH", "UH"), "y": ("UW", "UW"), "ʉ": ("UW", "UW"),
    "ʊ": ("UH", "UH"), "u": ("UW", "UW"),
}
CLOSE_FRONT = set("iɪyʏj")
CLOSE_BACK = set("uʊwɯ")
# closing diphthongs with an ARPAbet twin: first vowel → (diphthong ending front, diphthong ending back)
DIPHTHONG_STARTS: dict[str, tuple[str | None, str | None]] = {
    "a": ("AY", "AW"), "ɑ": ("AY", "AW"), "ä": ("AY", "AW"), "æ": ("AY", "AW"), "ɐ": ("AY", "AW"),
    "e": ("EY", None), "ɛ": ("EY", None),
    "o": ("OY", "OW"), "ɔ": ("OY", "OW"), "ɒ": ("OY", "OW"), "ə": (None, "OW"), "ɜ": (None, "OW"),
}


@dataclass(frozen=True)
class _Parsed:
    """A phone name read: its ARPAbet parts (equal shares unless a split is given), or silence."""

    parts: tuple[str, ...]
    silent: bool = False
    marks_only: bool = False  # nothing but stress, length, tone or diacritics (Piper's lone codepoints)


def _modifier(ch: str) -> bool:
    """A modifier letter (ʲ ʷ ʰ ᵝ ...): it colours the phone before it, the lips barely follow."""
    return ch in MODIFIERS or (unicodedata.category(ch) == "Lm" and ch not in VOWELS and ch not in CONSONANTS)


def _strip(name: str) -> tuple[str, bool]:
    """(base symbols, long?): suprasegmentals, diacritics and espeak's non-IPA marks removed."""
    long = any(ch in LENGTH for ch in name)
    base = []
    for ch in unicodedata.normalize("NFC", name):
        if ch in STRESS or ch in LENGTH or ch in TONES or ch in TIES or ch in NON_IPA or ch.isspace():
            continue
        if unicodedata.combining(ch):
            continue
        if ch not in CONSONANTS and ch not in VOWELS and ch not in MODIFIERS:
            ch = unicodedata.normalize("NFD", ch)[0]  # a precomposed letter with a diacritic (ã, ẽ): its base
        base.append(ch)
    # a trailing modifier letter (aspiration, palatalisation, labialisation) does not move the lips enough
    while len(base) > 1 and _modifier(base[-1]):
        base.pop()
    return "".join(base), long


def _vowel(symbol: str, long: bool) -> str:
    short, longer = VOWELS[symbol]
    return longer if long else short


def _parse(name: str) -> _Parsed:
    raw = name.strip()
    if raw in SILENCE_NAMES or (raw and all(ch in PUNCTUATION or ch in "_|" for ch in raw)):
        return _Parsed((), silent=True)
    if LANGUAGE_SWITCH.match(raw):  # espeak names a switch to another language's phonemes "(en)"
        return _Parsed((), marks_only=True)
    base, long = _strip(raw)
    if not base:
        return _Parsed((), marks_only=True)
    if base in LONE_MODIFIER:
        return _Parsed((LONE_MODIFIER[base],))
    parts: list[str] = []
    i = 0
    while i < len(base):
        pair = base[i:i + 2]
        if pair in AFFRICATES:
            parts += AFFRICATES[pair]
            i += 2
            continue
        ch = base[i]
        nxt = base[i + 1] if i + 1 < len(base) else ""
        if ch in DIPHTHONG_STARTS and nxt and (nxt in CLOSE_FRONT or nxt in CLOSE_BACK):
            front, back = DIPHTHONG_STARTS[ch]
            diphthong = front if nxt in CLOSE_FRONT else back
            if diphthong and (nxt in VOWELS or nxt in "jw"):
                parts.append(diphthong)
                i += 2
                continue
        if ch in VOWELS:
            parts.append(_vowel(ch, long))
        elif ch in CONSONANTS:
            parts.append(CONSONANTS[ch])
        elif _modifier(ch):
            pass
        else:
            log.debug("IPA symbol %r (in %r) has no mouth class; shown as an unknown phone", ch, name)
            parts.append("HH")
        i += 1
    return _Parsed(tuple(parts))


def to_arpabet(phone: str) -> tuple[str, ...]:
    """The ARPAbet phones nearest to one IPA phone name, in order; ``("SIL",)`` for a pause, ``()`` for a
    name that is only stress, length or diacritic marks."""
    parsed = _parse(phone)
    if parsed.silent:
        return (SILENCE,)
    return parsed.parts


def is_silence(phone: str) -> bool:
    return _parse(phone).silent


def is_vowel(phone: str) -> bool:
    """True for a phone whose base symbols are all vowels (a monophthong or diphthong)."""
    base, _ = _strip(phone)
    return bool(base) and all(ch in VOWELS for ch in base)


def is_bilabial(phone: str) -> bool:
    """True for a phone that closes (or all but closes) both lips: p b m ɓ ʙ ɸ β and affricates with them."""
    base, _ = _strip(phone)
    return bool(base) and base[0] in "pbmɓʙɸβ"


def _fields(timing) -> tuple[str, float, float]:
    if hasattr(timing, "phone"):
        return str(timing.phone), float(timing.start), float(timing.end)
    name, start, end = timing
    return str(name), float(start), float(end)


def _is_single_vowel(name: str) -> bool:
    base, _ = _strip(name)
    return len(base) == 1 and base in VOWELS


def group_phones(timings: Iterable) -> list[tuple[str, float, float]]:
    """Timed IPA phones with lone marks folded in (Piper gives one codepoint per phone).

    A stress mark alone joins the phone after it; a length mark or diacritic alone joins the one before
    (it lengthens or colours it); a space is a word boundary inside fluent speech, shared half and half
    by its neighbours; a vowel followed (without stress) by a close vowel forming a closing diphthong
    with an ARPAbet twin becomes that diphthong. espeak's names are whole phones already and pass
    through unchanged.
    """
    items = sorted((_fields(t) for t in timings), key=lambda t: t[1])
    out: list[list] = []
    carry_start: float | None = None  # a stress mark's start, waiting for its phone
    carry_prefix = ""
    pending_space: tuple[float, float] | None = None
    for name, start, end in items:
        if name and name.isspace():
            pending_space = (start, end)
            continue
        if pending_space is not None:
            s0, e0 = pending_space
            middle = (s0 + e0) / 2
            if out and not is_silence(out[-1][0]) and not is_silence(name):
                out[-1][2] = max(out[-1][2], middle)
                start = min(start, middle)
            else:
                out.append([PAUSE, s0, e0])
            pending_space = None
        if LANGUAGE_SWITCH.match(name.strip()):
            continue  # no sound of its own: its time (if any) is silence
        parsed = _parse(name)
        if parsed.marks_only and name and all(ch in STRESS for ch in name):
            carry_start = start if carry_start is None else carry_start
            carry_prefix += name
            continue
        if parsed.marks_only and out and not is_silence(out[-1][0]):
            out[-1][0] += name
            out[-1][2] = max(out[-1][2], end)
            continue
        if carry_start is not None:
            start, name = carry_start, carry_prefix + name
            carry_start, carry_prefix = None, ""
        if out and _is_single_vowel(out[-1][0]) and _is_single_vowel(name) and not any(ch in STRESS for ch in name):
            first, _ = _strip(out[-1][0])
            second, _ = _strip(name)
            front, back = DIPHTHONG_STARTS.get(first, (None, None))
            if (second in CLOSE_FRONT and front) or (second in CLOSE_BACK and back):
                out[-1][0] += name
                out[-1][2] = max(out[-1][2], end)
                continue
        out.append([name, start, end])
    if pending_space is not None:
        out.append([PAUSE, *pending_space])
    return [(n, s, e) for n, s, e in _soft_onsets(out)]


def _soft_onsets(items: list[list]) -> list[list]:
    """A lone palatalisation mark (espeak's own ``ʲ`` event between a soft consonant and its vowel, 40-50 ms that
    leave the vowel itself 15-20 ms) is the vowel's onset, not a glide of its own: the vowel starts there, so a
    soft vowel opens the mouth as long as it sounds (Russian ля, ря, мё)."""
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == "ʲ" and is_vowel(item[0]) and abs(out[-1][2] - item[1]) < 1e-6:
            item = [item[0], out.pop()[1], item[2]]
        out.append(item)
    return out


# Symbols a language's voice uses for what the mouth does differently there than in English. Russian: the reduced
# [ɐ] (akanye: an unstressed а or о just before the stress), which espeak writes ʌ or ɐ, is an open vowel, not the
# lazy schwa-like AH those symbols are in English (CMUdict's AH0/AH1); its trilled r is the tongue tip alone, so the
# lips stay with the vowels around it (English's rounded R would close the short vowels after it).
LANGUAGE_PHONES: dict[str, dict[str, str]] = {"ru": {"ʌ": "a", "ɐ": "a", "r": "d"}}


def in_language(name: str, language: str = "en") -> str:
    """A phone name as :func:`to_arpabet` should read it in ``language`` (see :data:`LANGUAGE_PHONES`)."""
    table = LANGUAGE_PHONES.get((language or "").replace("_", "-").split("-")[0].lower())
    return "".join(table.get(ch, ch) for ch in name) if table else name


def to_segments(timings: Iterable, language: str = "en") -> list[PhoneSegment]:
    """Timed IPA phones (spoken in ``language``) → timed ARPAbet :class:`~.shapes.PhoneSegment` for
    :func:`.shapes.phones_to_cues`.

    A phone that maps to two parts (a split vowel sequence, pf) gives the first part
    ``DIPHTHONG_SPLIT`` of its time, the rest the remainder; three or more parts share it equally.
    """
    segments: list[PhoneSegment] = []
    for name, start, end in group_phones(timings):
        if end <= start:
            continue
        parts = to_arpabet(in_language(name, language))
        if not parts:
            continue
        if len(parts) == 1:
            segments.append(PhoneSegment(parts[0], start, end))
            continue
        if len(parts) == 2:
            bounds = [start, start + (end - start) * DIPHTHONG_SPLIT, end]
        else:
            bounds = [start + (end - start) * k / len(parts) for k in range(len(parts) + 1)]
        segments += [PhoneSegment(p, bounds[k], bounds[k + 1]) for k, p in enumerate(parts)]
    return segments


