"""The pack's own lip-sync aligner: timed phones from speech with pocketsphinx, then Rhubarb-style shapes.

* With the dialogue text: forced alignment (pocketsphinx's two-pass word then phone alignment against
  the en-us acoustic model and CMUdict). Words missing from the dictionary, or an alignment that
  fails, fall back to phone recognition for that line.
* Without text: phone recognition (pocketsphinx ``allphone`` search with the en-us phone LM).
* Either way, an energy gate marks what is really silent, so pauses become X whatever the recogniser
  believed, and the result is deterministic (same audio and text, same cues).

pocketsphinx ships its model in the wheel, so this runs on a fresh machine with nothing downloaded.
Decoders are built once per process (loading the model costs ~0.3 s) and reused under a lock; cepstral
mean normalisation is per utterance ("batch") and the feature front end (its noise estimate) is reset
before each utterance, so no line's result depends on the lines before it.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio.clip import AudioClip
from .cues import MouthCues, restrict_shapes
from .errors import LipSyncError
from .shapes import PhoneSegment, phones_to_cues

log = logging.getLogger(__name__)

ALIGN_RATE = 16000
FRAME = 0.01  # pocketsphinx's frame: 10 ms
PAD_SECONDS = 0.25
SILENCE_BELOW_DB = -38.0  # relative to the loudest 10 ms: quieter than this is silence
_lock = threading.Lock()


@dataclass(frozen=True)
class Alignment:
    phones: tuple[PhoneSegment, ...]
    method: str  # "forced" or "phonetic"
    notes: tuple[str, ...] = ()


def _model_dir() -> Path:
    try:
        import pocketsphinx
    except ImportError:
        raise LipSyncError("the built-in aligner needs the package pocketsphinx (pip install pocketsphinx)") from None
    return Path(pocketsphinx.__file__).parent / "model" / "en-us"


@lru_cache(maxsize=1)
def _align_decoder():
    from pocketsphinx import Decoder

    # wide beams: synthetic and expressive voices fit the acoustic model poorly, and a pruned-away path
    # makes the whole line fail to align. No language model: the text to align is the grammar (loading the
    # default trigram model cost 0.5 s of every call and was never used). No dictionary either: the words of each
    # line are looked up in CMUdict as they come (reading all 135,000 entries cost 0.1 s of every call)
    return Decoder(samprate=ALIGN_RATE, loglevel="FATAL", bestpath=False, beam=1e-200, pbeam=1e-200, wbeam=1e-150,
                   cmn="batch", lm=None, dict=None)


@lru_cache(maxsize=1)
def _cmudict_text() -> str:
    return (_model_dir() / "cmudict-en-us.dict").read_text(encoding="utf-8")


def _add_words(decoder, words: list[str]) -> None:
    """Give ``decoder`` the CMUdict pronunciations (alternates as ``word(2)`` …) of those of ``words`` it lacks, found
    in one pass over the dictionary's text; a word CMUdict lacks stays unknown."""
    wanted = sorted({w for w in words if decoder.lookup_word(w) is None})
    if not wanted:
        return
    pattern = re.compile(r"^((?:" + "|".join(map(re.escape, wanted)) + r")(?:\(\d+\))?) (.+)$", re.MULTILINE)
    entries = pattern.findall(_cmudict_text())
    for n, (word, phones) in enumerate(entries):
        decoder.add_word(word, phones, n == len(entries) - 1)


@lru_cache(maxsize=1)
def _phone_decoder():
    from pocketsphinx import Decoder

    # phones only: neither the word dictionary nor the word language model (0.25 s to load, unused here)
    return Decoder(samprate=ALIGN_RATE, loglevel="FATAL", allphone=str(_model_dir() / "en-us-phone.lm.bin"),
                   lw=2.0, beam=1e-20, pbeam=1e-20, cmn="batch", dict=None, lm=None)


def to_pcm16k(audio: AudioClip) -> bytes:
    """Mono 16-bit PCM at 16 kHz, what the acoustic model was trained on."""
    mono = audio.mono()
    if audio.sample_rate != ALIGN_RATE:
        import soxr

        mono = soxr.resample(mono, audio.sample_rate, ALIGN_RATE, quality="HQ")
    pad = np.zeros(int(ALIGN_RATE * PAD_SECONDS), np.float32)  # room for the last word to end in silence
    return (np.clip(np.concatenate([mono, pad]), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def silent_frames(audio: AudioClip) -> np.ndarray:
    """One bool per 10 ms frame: True where the audio is silent (below SILENCE_BELOW_DB of the peak frame)."""
    mono = audio.mono()
    hop = max(1, int(audio.sample_rate * FRAME))
    count = int(np.ceil(len(mono) / hop))
    padded = np.zeros(count * hop, np.float32)
    padded[:len(mono)] = mono
    rms = np.sqrt(np.mean(padded.reshape(count, hop) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms / max(float(rms.max()), 1e-9))
    return (level < SILENCE_BELOW_DB) | (rms < 1e-4)


def dictionary_words(text: str) -> list[str]:
    """The words of a line as CMUdict spells them: lower case, apostrophes kept, numbers already spelled out."""
    from ..audio.text import normalize_text

    return re.findall(r"[a-z]+(?:'[a-z]+)*", normalize_text(text, "en").lower().replace("-", " "))


def _forced(pcm: bytes, words: list[str]) -> list[PhoneSegment] | None:
    decoder = _align_decoder()
    _add_words(decoder, words)
    missing = [w for w in words if decoder.lookup_word(w) is None]
    if missing or not words:
        log.info("not in the pronunciation dictionary: %s; using phone recognition", ", ".join(missing[:5]))
        return None
    decoder.set_align_text(" ".join(words))
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if not any(seg.word not in ("<sil>", "<s>", "</s>") for seg in decoder.seg() or ()):
        return None
    decoder.set_alignment()
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    alignment = decoder.get_alignment()
    if alignment is None:
        return None
    return [PhoneSegment(phone.name, phone.start * FRAME, (phone.start + phone.duration) * FRAME)
            for word in alignment for phone in word]


def _phonetic(pcm: bytes) -> list[PhoneSegment]:
    decoder = _phone_decoder()
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [PhoneSegment(seg.word, seg.start_frame * FRAME, (seg.end_frame + 1) * FRAME) for seg in decoder.seg()]


def _gate(phones: list[PhoneSegment], silent: np.ndarray) -> list[PhoneSegment]:
    """Phones over frames that are all silent become SIL (recognisers hallucinate in silence)."""
    out = []
    for seg in phones:
        lo, hi = int(round(seg.start / FRAME)), max(int(round(seg.end / FRAME)), int(round(seg.start / FRAME)) + 1)
        window = silent[lo:hi]
        out.append(PhoneSegment("SIL", seg.start, seg.end) if len(window) and window.all() else seg)
    return out


def align_phones(audio: AudioClip, text: str | None = None) -> Alignment:
    """Timed ARPAbet phones for ``audio``: forced alignment with ``text`` when it can, else phone recognition."""
    if audio.frames == 0:
        raise LipSyncError("the audio is empty")
    pcm = to_pcm16k(audio)
    silent = silent_frames(audio)
    notes: tuple[str, ...] = ()
    with _lock:
        phones = _forced(pcm, dictionary_words(text)) if text and text.strip() else None
        method = "forced"
        if phones is None:
            if text and text.strip():
                notes = ("the dialogue text could not be aligned (words outside the dictionary, or speech that "
                         "does not match); mouth shapes come from phone recognition",)
            phones, method = _phonetic(pcm), "phonetic"
    return Alignment(tuple(_gate(phones, silent)), method, notes)


def lipsync(audio: AudioClip, text: str | None = None, extended_shapes: str = "GHX",
            sound_file: str = "") -> MouthCues:
    """Rhubarb-compatible mouth cues for ``audio`` (and, better, its dialogue ``text``)."""
    alignment = align_phones(audio, text)
    cues = phones_to_cues(list(alignment.phones), audio.seconds)
    return MouthCues(tuple(restrict_shapes(cues, extended_shapes)), audio.seconds, sound_file,
                     f"animstudio-{alignment.method}", extended_shapes.upper(), alignment.notes)
