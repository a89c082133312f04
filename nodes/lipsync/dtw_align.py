"""Phone timings for speech the pack did not make, from the audio plus its text, in any espeak-ng language.

There is no acoustic model for most of the languages the users speak, so this does what TTS-based
forced aligners (aeneas) do, taken down to phonemes: speak the text with espeak-ng, whose phoneme
timings are exact, compute the same spectral features (MFCC) for that reference and for the target
audio, align the two feature sequences with dynamic time warping, and carry the reference's phoneme
boundaries along the warping path onto the target's time axis. Whatever language espeak speaks, this
aligns; how well depends on how alike the two voices sound, which is why the features are normalised
per utterance (mean and variance of each cepstral coefficient) and spectral detail under a floor
relative to the loudest frame is ignored (quiet noise should not look like speech).

A text that is not what the audio says still yields *a* path, just a poor one. The mean distance along
the path (``AlignmentResult.cost``) cannot tell it apart, because another voice costs as much as other
words; how often the path passes over a clearly better-matching reference frame
(``AlignmentResult.confusion``, see :func:`confusion`) can, and above ``MISMATCH_CONFUSION`` the
alignment is refused with a :class:`LipSyncError` that reports it. A text that says only part of the
audio (half the sentence) is not reliably caught.

Without text (outside English, where the pocketsphinx aligner has no phones to offer),
:func:`energy_cues_without_text` gives open/closed mouth cues from loudness alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..audio.clip import AudioClip
from ..audio.mixing import resample
from ..audio.tts import PhoneTiming
from .cues import MouthCue, MouthCues, merge_equal
from .errors import LipSyncError
from .features import FEATURE_RATE, HOP_SECONDS, cepstra, log_mel

log = logging.getLogger(__name__)

BAND_FRACTION = 0.25          # Sakoe-Chiba band radius: this share of the longer sequence, ...
BAND_MIN_SECONDS = 1.5        # ... but at least this (a short line may start after a long pause) ...
BAND_MAX_SECONDS = 5.0        # ... and at most this (long audio stays linear in time and memory)
DTW_BLOCK_ROWS = 64
REFERENCE_VARIANTS = ("", "+f5")  # the language's own (male) espeak voice and a female variant
CONFUSION_GUARD_SECONDS = 0.05
# See :func:`confusion`. Calibrated on the eight test sentences (en cmn ru ko it es de fr) against 11
# voice set-ups each (other variants, whisper, ±25 % rate, pitch, 20-25 dB white noise): the right text
# scores 0.000-0.097 (whispered 0.126 at worst); another sentence in the same language 0.183-0.39.
MISMATCH_CONFUSION = 0.15


@dataclass(frozen=True)
class AlignmentResult:
    """The aligned phones, how good the match was (lower is better for both) and the reference voice."""

    phones: tuple[PhoneTiming, ...]
    cost: float          # mean feature distance along the warping path (voice difference + word difference)
    confusion: float     # see confusion(): the normalised mismatch measure the text check uses
    voice: str
    reference_seconds: float
    audio_seconds: float


# ------------------------------------------------------------------------------------------------ DTW

def _band(n: int, m: int) -> tuple[np.ndarray, int]:
    """For each target row, the first reference column of a Sakoe-Chiba band around the straight line
    from (0, 0) to (n-1, m-1); and the band's width. The band follows the length ratio, so a slower or
    faster speaker stays inside it, and keeps memory at ``n x width`` however long the audio."""
    radius = int(np.clip(BAND_FRACTION * max(n, m), BAND_MIN_SECONDS / HOP_SECONDS, BAND_MAX_SECONDS / HOP_SECONDS))
    width = min(m, 2 * radius + 1)
    centre = np.round(np.arange(n) * ((m - 1) / max(n - 1, 1))).astype(np.int64)
    start = np.clip(centre - radius, 0, m - width)
    return start, width


def dtw(target: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Align two feature sequences; returns the path (target frames, reference frames) and its mean cost.

    Steps (1,0), (0,1), (1,1) with equal weight, Euclidean local distance, inside :func:`_band`. Each
    target row is computed at once: the diagonal and vertical moves are elementwise, and the
    horizontal recursion ``D[j] = min(t[j], D[j-1] + c[j])`` is a cumulative minimum over
    ``t - cumsum(c)``. Only a move code per cell is kept (``n x width`` bytes) for the backtrack.
    """
    n, m = len(target), len(reference)
    start, width = _band(n, m)
    ref_sq = (reference ** 2).sum(axis=1)
    tgt_sq = (target ** 2).sum(axis=1)
    moves = np.zeros((n, width), np.int8)  # 0 diagonal, 1 from the row below (vertical), 2 horizontal
    inf = np.inf
    prev = np.full(width, inf)
    prev_start = 0
    block, block_end, c0 = None, 0, 0
    for i in range(n):
        s = start[i]
        if i >= block_end:  # local distances for the next rows in one matrix product
            block_end = min(n, i + DTW_BLOCK_ROWS)
            c0, c1 = s, start[block_end - 1] + width
            block = np.sqrt(np.maximum(ref_sq[None, c0:c1] + tgt_sq[i:block_end, None]
                                       - 2.0 * (target[i:block_end] @ reference[c0:c1].T), 0.0))
            block_start = i
        cost = block[i - block_start, s - c0:s - c0 + width]
        if i == 0:
            row = np.cumsum(cost)
            moves[0, 1:] = 2
            prev, prev_start = row, s
            continue
        shift = s - prev_start  # previous row's band starts `shift` columns earlier
        up = np.full(width, inf)
        diag = np.full(width, inf)
        lo = max(0, -shift)
        hi = min(width, width - shift)
        up[lo:hi] = prev[lo + shift:hi + shift]
        dlo = max(0, 1 - shift)
        dhi = min(width, width - shift + 1)
        diag[dlo:dhi] = prev[dlo + shift - 1:dhi + shift - 1]
        best = np.minimum(diag, up)
        through = best + cost
        csum = np.cumsum(cost)
        run = np.full(width, inf)  # best arrival from the left: csum[j] + min over k < j of (through[k] - csum[k])
        run[1:] = np.minimum.accumulate(through[:-1] - csum[:-1]) + csum[1:]
        row = np.minimum(through, run)
        code = np.where(up < diag, 1, 0).astype(np.int8)
        code[run < through] = 2
        moves[i] = code
        prev, prev_start = row, s
    total = prev[m - 1 - start[-1]]
    i, j = n - 1, m - 1
    path_i, path_j = [i], [j]
    while i > 0 or j > 0:
        code = moves[i, j - start[i]]
        if code == 2:
            j -= 1
        elif code == 1:
            i -= 1
        else:
            i, j = i - 1, j - 1
        path_i.append(i)
        path_j.append(j)
    path_i.reverse()
    path_j.reverse()
    return np.array(path_i), np.array(path_j), float(total / len(path_i))


def _ref_to_target(path_i: np.ndarray, path_j: np.ndarray, m: int):
    """A monotone map from reference frame positions to target frame positions.

    The boundary between reference frames ``j-1`` and ``j`` lands between the last target frame the
    path pairs with ``j-1`` and the first it pairs with ``j``; positions in between are interpolated.
    Before the first reference frame stands the end of what the path pairs with it: a phone espeak
    starts at once, said after a pause in the target, starts where the pause ends.
    """
    first = np.full(m, np.inf)
    last = np.full(m, -np.inf)
    np.minimum.at(first, path_j, path_i)
    np.maximum.at(last, path_j, path_i)
    knots_x = np.concatenate([[-0.5], np.arange(1, m) - 0.5, [m - 0.5]])
    knots_y = np.concatenate([[last[0] - 0.5], (last[:-1] + first[1:]) / 2.0, [last[-1] + 0.5]])
    return lambda frames: np.interp(frames, knots_x, knots_y)


# ------------------------------------------------------------------------------------------------ API

def confusion(target: np.ndarray, reference: np.ndarray, path_i: np.ndarray, path_j: np.ndarray,
              max_cells: int = 1500) -> float:
    """How often the path pairs a target frame with a reference frame that is beaten by one elsewhere.

    For each path cell, the share of reference frames more than ``CONFUSION_GUARD_SECONDS`` away from the
    path's choice that lie closer to the target frame than the choice does; averaged over the path.
    Distances between two different voices are all larger, but which frame is nearest is not: the
    right phone still wins, so this is near 0 for the right text and ~0.2-0.4 for a wrong one, whatever
    the voices. (The mean path distance alone mixes "other voice" with "other words".) At most
    ``max_cells`` path cells are scored, evenly spaced, so long audio costs ``max_cells x M`` distances.
    """
    step = max(1, len(path_i) // max_cells)
    ti, rj = path_i[::step], path_j[::step]
    guard = int(round(CONFUSION_GUARD_SECONDS / HOP_SECONDS))
    ref_sq = (reference ** 2).sum(axis=1)
    columns = np.arange(len(reference))
    shares = []
    for lo in range(0, len(ti), 256):
        t = target[ti[lo:lo + 256]]
        dist = ref_sq[None, :] + (t ** 2).sum(axis=1)[:, None] - 2.0 * (t @ reference.T)
        chosen = dist[np.arange(len(t)), rj[lo:lo + 256]]
        far = np.abs(columns[None, :] - rj[lo:lo + 256, None]) > guard
        shares.append(((dist < chosen[:, None]) & far).mean(axis=1))
    return float(np.concatenate(shares).mean())


def _spectrum_shape(mel: np.ndarray) -> np.ndarray:
    """Long-term average log-mel spectrum of the louder half of the frames, level removed: the voice's
    timbre (vocal tract length, synthesiser), which picks the closest-sounding reference voice."""
    energy = mel.sum(axis=1)
    shape = mel[energy >= np.median(energy)].mean(axis=0)
    return shape - shape.mean()


def espeak_voice_for(language: str) -> str:
    """The espeak-ng voice that speaks ``language`` (``en``, ``cmn``, ``pt-br`` …), or a LipSyncError."""
    from ..audio.engines import EspeakEngine
    from ..audio.tts import TTSError, VoiceSettings

    try:
        return EspeakEngine().resolve_voice(VoiceSettings(language=language))
    except TTSError as exc:
        raise LipSyncError(f"cannot align text in language {language!r}: {exc}") from None


def _speak(text: str, voice: str):
    from ..audio.espeak import espeak_synthesize

    try:
        samples, rate, events, _ = espeak_synthesize(text, voice)
    except Exception as exc:  # espeak missing or refusing the text: one error for the user
        raise LipSyncError(f"espeak-ng could not speak the text to align against: {exc}") from None
    if not events or len(samples) == 0:
        raise LipSyncError(f"espeak-ng found nothing to speak in {text!r}")
    return samples, rate, events


def align_result(audio: AudioClip, text: str, language: str = "en", check: bool = True) -> AlignmentResult:
    """:func:`align_with_text` with the match statistics and the reference voice, for metadata.

    ``check=False`` returns even an alignment the text check would refuse (to measure or report it).

    The reference is spoken by each of ``REFERENCE_VARIANTS`` (a male and a female espeak voice: the
    same phonemes at the same times) and the one whose average spectrum is closest to the target's is
    aligned, so a high voice is compared with a high voice.
    """
    if not text or not text.strip():
        raise LipSyncError("alignment needs the text that is spoken; it is empty")
    if audio.frames == 0:
        raise LipSyncError("the audio to align is empty")
    base = espeak_voice_for(language)
    target = resample(AudioClip(audio.mono(), audio.sample_rate), FEATURE_RATE).mono()
    if np.abs(target).max() < 1e-4:
        raise LipSyncError("the audio to align is silent")
    target_mel = log_mel(target, FEATURE_RATE)
    target_shape = _spectrum_shape(target_mel)
    best = None
    for variant in REFERENCE_VARIANTS:
        samples, rate, events = _speak(text, base + variant)
        mel = log_mel(resample(AudioClip(samples, rate), FEATURE_RATE).mono(), FEATURE_RATE)
        distance = float(np.linalg.norm(_spectrum_shape(mel) - target_shape))
        if best is None or distance < best[0]:
            best = (distance, base + variant, samples, rate, events, mel)
    _, voice, samples, rate, events, ref_mel = best
    ref_feats, tgt_feats = cepstra(ref_mel), cepstra(target_mel)
    path_i, path_j, cost = dtw(tgt_feats, ref_feats)
    confused = confusion(tgt_feats, ref_feats, path_i, path_j)
    log.debug("DTW %d x %d frames against %s: cost %.3f, confusion %.3f", len(tgt_feats), len(ref_feats),
              voice, cost, confused)
    if check and confused > MISMATCH_CONFUSION:
        raise LipSyncError(
            f"the text does not match the audio: alignment confusion {confused:.2f} (matched speech stays "
            f"under {MISMATCH_CONFUSION:.2f}; mean distance {cost:.2f}); check that the text is what is said "
            f"and that {language!r} is the language spoken")
    to_target = _ref_to_target(path_i, path_j, len(ref_feats))
    starts_ref = np.array([e.sample / rate for e in events])
    starts = np.clip(to_target(starts_ref / HOP_SECONDS) * HOP_SECONDS, 0.0, audio.seconds)
    starts = np.maximum.accumulate(starts)
    ends = np.append(starts[1:], audio.seconds)
    phones = tuple(PhoneTiming(e.phoneme, float(s), float(t)) for e, s, t in zip(events, starts, ends))
    return AlignmentResult(phones, cost, confused, voice, len(samples) / rate, audio.seconds)


def align_with_text(audio: AudioClip, text: str, language: str = "en") -> list[PhoneTiming]:
    """Phone timings for ``audio`` saying ``text`` in ``language``, phones named as espeak-ng names them.

    Raises :class:`LipSyncError` for a language espeak does not speak, or a text the audio does not say.
    """
    return list(align_result(audio, text, language).phones)


# ------------------------------------------------------------------------------------------------ no text

ENERGY_FRAME = 0.01
SILENCE_DB = -35.0            # under the loudest frame by more than this (or near the noise floor): silent
ABSOLUTE_SILENCE_DB = -60.0   # dBFS: quieter than this is silent whatever else is (an all-silent clip)
REST_SECONDS = 0.15           # silence at least this long is rest (X); shorter is a closure (A)
MIN_CUE_SECONDS = 0.04        # one frame at 24 fps: shorter cues flicker
ENERGY_NOTE = ("mouth cues come from loudness only, not phonemes (no text to align); open by volume, "
               "closed in pauses")


def energy_cues_without_text(audio: AudioClip) -> MouthCues:
    """Open/closed mouth cues from loudness alone: X at rest, A for short closures, B/C/D by loudness.

    The fallback when there is no text outside English: nothing here knows phones, so rounded or
    teeth shapes never appear, and ``notes`` says so. Cues are contiguous and cover the audio.
    """
    duration = audio.seconds
    if audio.frames == 0:
        raise LipSyncError("the audio for lip sync is empty")
    signal = audio.mono().astype(np.float64)
    hop = max(1, int(round(ENERGY_FRAME * audio.sample_rate)))
    count = max(1, -(-len(signal) // hop))
    padded = np.pad(signal, (0, count * hop - len(signal)))
    db = 10 * np.log10((padded.reshape(count, hop) ** 2).mean(axis=1) + 1e-12)
    db = np.convolve(np.pad(db, 1, mode="edge"), np.ones(3) / 3, mode="valid")  # 30 ms: no flicker
    peak = db.max()
    noise = np.percentile(db, 10)
    gate = max(peak + SILENCE_DB, noise + 6.0, ABSOLUTE_SILENCE_DB)
    voiced = db > gate
    # loudness tiers among voiced frames: B the quieter 40 %, C the next 35 %, D the loudest 25 %
    shapes = np.full(count, "X", dtype="<U1")
    if voiced.any():
        middle, loud = np.percentile(db[voiced], [40, 75])
        shapes[voiced] = "B"
        shapes[voiced & (db > middle)] = "C"
        shapes[voiced & (db > loud)] = "D"
    cues = []
    edges = np.flatnonzero(shapes[1:] != shapes[:-1]) + 1
    bounds = np.concatenate([[0], edges, [count]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        shape = shapes[a]
        if shape == "X" and (b - a) * ENERGY_FRAME < REST_SECONDS and 0 < a and b < count:
            shape = "A"  # a short pause inside speech: lips closed, not at rest
        cues.append(MouthCue(a * ENERGY_FRAME, min(b * ENERGY_FRAME, duration), str(shape)))
    cues = _absorb_short(merge_equal(cues))
    cues[0] = MouthCue(0.0, cues[0].end, cues[0].shape)
    cues[-1] = MouthCue(cues[-1].start, duration, cues[-1].shape)
    return MouthCues(tuple(c for c in cues if c.end > c.start), duration, engine="energy", notes=(ENERGY_NOTE,))


def _absorb_short(cues: list[MouthCue]) -> list[MouthCue]:
    """Cues shorter than ``MIN_CUE_SECONDS`` join the neighbour before them (the first joins the next)."""
    out: list[MouthCue] = []
    for cue in cues:
        if out and (cue.seconds < MIN_CUE_SECONDS or out[-1].seconds < MIN_CUE_SECONDS):
            keep = out[-1].shape if out[-1].seconds >= MIN_CUE_SECONDS else cue.shape
            out[-1] = MouthCue(out[-1].start, cue.end, keep)
        else:
            out.append(cue)
    return merge_equal(out)
