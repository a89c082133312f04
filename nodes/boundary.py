"""The one place that converts between ComfyUI's types and the stages' numpy, and finds ComfyUI's folders.

ComfyUI's ``IMAGE`` is a torch tensor ``[B, H, W, C]`` float in 0..1. The stages work on numpy
``uint8`` ``[H, W, 3]`` frames. Inside ComfyUI torch is always there; in the pack-only embedded engine
(no ComfyUI, maybe no torch) an ``IMAGE`` travels as a numpy float32 array of the same layout, so the
same node classes run in both places and torch is imported only when it is installed.

Folders: inside ComfyUI, ``folder_paths`` (imported lazily, never at module import); in the
embedded engine, the folders the runner configured with :func:`use_folders`.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from contextvars import ContextVar
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_embedded_folders: ContextVar[dict | None] = ContextVar("animstudio_embedded_folders", default=None)


@contextlib.contextmanager
def use_folders(input_dir: str | Path, output_dir: str | Path):
    """Point the pack's nodes at these folders while the embedded engine runs a graph."""
    token = _embedded_folders.set({"input": Path(input_dir), "output": Path(output_dir)})
    try:
        yield
    finally:
        _embedded_folders.reset(token)


def comfy_folder_paths():
    """ComfyUI's ``folder_paths`` module inside a ComfyUI process, else None (never imported at module import)."""
    try:
        import folder_paths  # ComfyUI's; present only inside a ComfyUI process
    except ImportError:
        return None
    return folder_paths


_folder_paths = comfy_folder_paths


def register_model_folder(folder: str) -> None:
    """Make ``models/<folder>`` known to ComfyUI for model files (core lacks e.g. ``ipadapter``), as packs
    declare their folders, unless it is known already (core, extra_model_paths.yaml or another pack)."""
    fp = comfy_folder_paths()
    if fp is not None and folder not in fp.folder_names_and_paths:
        fp.folder_names_and_paths[folder] = ([os.path.join(fp.models_dir, folder)], set(fp.supported_pt_extensions))


def model_file_names(folder: str) -> list[str]:
    """The files in ComfyUI's ``models/<folder>`` folders; empty outside ComfyUI."""
    fp = comfy_folder_paths()
    if fp is None:
        return []
    register_model_folder(folder)
    return list(fp.get_filename_list(folder))


def model_file_missing(folder: str, name: str, what: str) -> str | None:
    """Why model file *name* cannot be found (a sentence naming the file and ``models/<folder>``), or None.
    Outside ComfyUI *name* must be a path."""
    if not name:
        return f"no {what} file chosen: put it in models/{folder} and pick it"
    fp = comfy_folder_paths()
    if fp is not None:
        register_model_folder(folder)
        if fp.get_full_path(folder, name) is not None:
            return None
        searched = ", ".join(fp.get_folder_paths(folder)) or "none configured"
        return f"{what} file '{name}' not found in models/{folder} (searched: {searched})"
    if Path(name).is_file():
        return None
    return f"{what} file '{name}' not found (outside ComfyUI it must be a path; inside, a file in models/{folder})"


def model_file_path(folder: str, name: str, what: str, error: type[Exception] = FileNotFoundError) -> Path:
    """The full path of model file *name*; raises *error* with :func:`model_file_missing`'s sentence."""
    problem = model_file_missing(folder, name, what)
    if problem:
        raise error(problem)
    fp = comfy_folder_paths()
    return Path(fp.get_full_path(folder, name)) if fp is not None else Path(name)


def _directory(kind: str) -> Path:
    embedded = _embedded_folders.get()
    if embedded is not None:
        return embedded[kind]
    fp = _folder_paths()
    if fp is None:
        raise RuntimeError(f"no {kind} folder: run inside ComfyUI or through the embedded engine")
    return Path(fp.get_input_directory() if kind == "input" else fp.get_output_directory())


def input_directory() -> Path:
    return _directory("input")


def output_directory() -> Path:
    return _directory("output")


def list_input_files(suffixes: tuple[str, ...]) -> list[str]:
    """Files in the input folder (and its subfolders) with these suffixes, as ComfyUI-style relative names."""
    try:
        root = input_directory()
    except RuntimeError:
        return []
    if not root.is_dir():
        return []
    names = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.lower().endswith(suffixes):
                names.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(names)


def input_file(name: str) -> Path:
    """A file named by a graph, inside the input folder (never outside it)."""
    from ..common.paths import PathEscapeError, resolve_inside

    try:
        return resolve_inside(input_directory(), name)
    except PathEscapeError:
        raise ValueError(f"{name!r} leaves the input folder") from None


def input_file_problem(name: str) -> bool | str:
    """``VALIDATE_INPUTS`` for file inputs: True, or what is wrong with the name."""
    try:
        path = input_file(name)
    except ValueError as exc:
        return str(exc)
    return True if path.is_file() else f"file not found in the input folder: {name}"


def input_file_hash(name: str) -> str:
    """``IS_CHANGED`` for file inputs: the content hash, so an edited file re-runs the node."""
    from ..common.paths import path_digest

    return path_digest(input_file(name))


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def image_to_frames(image) -> np.ndarray:
    """ComfyUI ``IMAGE`` (torch or numpy, ``[B,H,W,C]`` float 0..1) → ``uint8 [B,H,W,3]``."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().float().numpy()
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array[None]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return (np.clip(np.nan_to_num(array[..., :3]), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def mask_to_array(mask) -> np.ndarray:
    """ComfyUI ``MASK`` (torch or numpy, ``[B,H,W]`` or ``[H,W]``, 0..1) → float32 numpy of the same shape."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().float().numpy()
    return np.asarray(mask, dtype=np.float32)


def frames_to_image(frames: np.ndarray):
    """``uint8 [B,H,W,3]`` (or one ``[H,W,3]``) → ComfyUI ``IMAGE``: torch when installed, else numpy."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    image = array.astype(np.float32) / 255.0
    if torch_available():
        import torch

        return torch.from_numpy(np.ascontiguousarray(image))
    return image


def video_output(path: Path):
    """ComfyUI's ``VIDEO`` for a saved file (``VideoFromFile``); the path itself outside ComfyUI."""
    try:
        from comfy_api.latest import InputImpl
    except ImportError:
        return path
    return InputImpl.VideoFromFile(str(path))


def check_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel; a no-op outside ComfyUI."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return
    mm.throw_exception_if_processing_interrupted()


class Progress:
    """``comfy.utils.ProgressBar`` inside ComfyUI; a callback (or nothing) in the embedded engine."""

    _embedded_hook: ContextVar = ContextVar("animstudio_progress_hook", default=None)

    def __init__(self, total: int):
        self.total = max(1, int(total))
        self.done = 0
        self._bar = None
        try:
            import comfy.utils

            self._bar = comfy.utils.ProgressBar(self.total)
        except ImportError:
            pass

    def update(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        if self._bar is not None:
            self._bar.update_absolute(self.done, self.total)
        hook = Progress._embedded_hook.get()
        if hook is not None:
            hook(self.done, self.total)


@contextlib.contextmanager
def progress_hook(callback):
    """Send every node's progress to ``callback(done, total)`` while the embedded engine runs."""
    token = Progress._embedded_hook.set(callback)
    try:
        yield
    finally:
        Progress._embedded_hook.reset(token)


def next_output_path(filename_prefix: str, suffix: str) -> tuple[Path, str, str]:
    """A fresh ``<prefix>_00001_.<suffix>`` under the output folder, as ComfyUI's savers name files.

    Returns the absolute path, the subfolder and the file name (the parts ComfyUI's ``/view`` takes).
    The prefix may hold subfolders but may not leave the output folder.
    """
    from ..common.paths import PathEscapeError, resolve_inside

    root = output_directory()
    prefix = filename_prefix.replace("\\", "/").strip("/") or "animstudio"
    try:
        target = resolve_inside(root, prefix)
    except PathEscapeError:
        raise ValueError(f"filename_prefix {filename_prefix!r} leaves the output folder") from None
    folder, stem = target.parent, target.name
    folder.mkdir(parents=True, exist_ok=True)
    taken = [int(m) for p in folder.glob(f"{stem}_*_.{suffix}")
             if (m := p.name[len(stem) + 1:-len(suffix) - 2]).isdigit()]
    name = f"{stem}_{max(taken, default=0) + 1:05d}_.{suffix}"
    subfolder = "" if folder == root else folder.relative_to(root).as_posix()
    return folder / name, subfolder, name


def audio_from_comfy(audio):
    """ComfyUI ``AUDIO`` (first item of the batch) → :class:`AudioClip` (phone timings: :func:`audio_phones`)."""
    from .audio.clip import AudioClip

    waveform = audio["waveform"]
    if hasattr(waveform, "detach"):
        waveform = waveform.detach().cpu().float().numpy()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 3:
        waveform = waveform[0]
    return AudioClip(waveform, int(audio["sample_rate"]))


# Extra keys of an AUDIO dict: the phones and the words the voice reports it spoke, so Lip Sync reads mouth
# shapes from them exactly and captions follow each word. Only audio_to_comfy(clip, phones, words=...) puts
# them there, so every node that builds new audio (join, pad, mix, level) drops them by construction, and
# _carried() refuses timings whose recorded length no longer matches the waveform (a node elsewhere that
# kept the key but cut or padded the audio).
PHONES_KEY = "animstudio_phones"
WORDS_KEY = "animstudio_words"
PHONES_LENGTH_TOLERANCE = 0.011  # seconds: one centisecond, plus a resampler's rounding of the length


def _rows(timings, name: str) -> list:
    return [[str(getattr(t, name)), float(t.start), float(t.end)] if hasattr(t, name) else
            [str(t[0]), float(t[1]), float(t[2])] for t in timings]


def audio_to_comfy(clip, phones=None, phone_set: str = "ipa", words=None) -> dict:
    """:class:`AudioClip` → ComfyUI ``AUDIO`` (a batch of one; torch when installed, else numpy).

    ``phones`` (``PhoneTiming`` or ``(phone, start, end)``, seconds from the clip's start, in ``phone_set``)
    travel under :data:`PHONES_KEY`, ``words`` (``WordTiming`` or ``(word, start, end)``) under
    :data:`WORDS_KEY`, each with the clip's length; pass them only for audio whose timing they describe.
    """
    waveform = np.ascontiguousarray(clip.samples[None], dtype=np.float32)
    if torch_available():
        import torch

        waveform = torch.from_numpy(waveform)
    audio = {"waveform": waveform, "sample_rate": int(clip.sample_rate)}
    if phones:
        audio[PHONES_KEY] = {"phone_set": phone_set, "duration": clip.seconds, "phones": _rows(phones, "phone")}
    if words:
        audio[WORDS_KEY] = {"duration": clip.seconds, "words": _rows(words, "word")}
    return audio


def _carried(audio, key: str, field: str) -> tuple[dict, list[tuple[str, float, float]]] | None:
    """The timings an ``AUDIO`` dict carries under ``key`` (rows in ``field``), or None: none, or stale."""
    carried = audio.get(key) if isinstance(audio, dict) else None
    if not carried or not carried.get(field):
        return None
    waveform = audio["waveform"]
    seconds = waveform.shape[-1] / int(audio["sample_rate"])
    if abs(seconds - float(carried.get("duration", -1.0))) > PHONES_LENGTH_TOLERANCE:
        log.warning("%s timings made for %.2f s of audio arrived with %.2f s of audio; ignored (the audio was "
                    "cut or padded after speech synthesis)", field[:-1], float(carried.get("duration", -1.0)), seconds)
        return None
    return carried, [(str(name), float(start), float(end)) for name, start, end in carried[field]]


def audio_phones(audio) -> tuple[list[tuple[str, float, float]], str] | None:
    """``(phones, phone_set)`` carried by an ``AUDIO`` dict, or None when it has none or they are stale."""
    found = _carried(audio, PHONES_KEY, "phones")
    return None if found is None else (found[1], str(found[0].get("phone_set", "ipa")))


def audio_words(audio) -> list[tuple[str, float, float]]:
    """``(word, start, end)`` rows carried by an ``AUDIO`` dict; empty when it has none or they are stale."""
    found = _carried(audio, WORDS_KEY, "words")
    return [] if found is None else found[1]


def temp_directory() -> Path:
    """Scratch space: ComfyUI's temp folder inside ComfyUI, else the embedded engine's, else the system's."""
    embedded = _embedded_folders.get()
    if embedded is not None:
        path = embedded["output"].parent / "temp"
    else:
        fp = _folder_paths()
        if fp is not None:
            path = Path(fp.get_temp_directory())
        else:
            import tempfile

            path = Path(tempfile.gettempdir()) / "animstudio"
    path.mkdir(parents=True, exist_ok=True)
    return path


PREVIEW_SUBFOLDER = "animstudio-preview"
THUMBNAIL_WIDTH = 256


def _preview_path(suffix: str) -> tuple[Path, dict]:
    import uuid

    name = f"{uuid.uuid4().hex[:16]}{suffix}"
    target = temp_directory() / PREVIEW_SUBFOLDER / name
    target.parent.mkdir(parents=True, exist_ok=True)
    return target, {"filename": name, "subfolder": PREVIEW_SUBFOLDER, "type": "temp"}


def save_preview_image(rgb: np.ndarray, width: int = THUMBNAIL_WIDTH) -> dict:
    """A small PNG of ``rgb`` (HxWx3 uint8) in ComfyUI's temp folder; returns the ``/view`` reference that a
    node's ``ui.images`` carries, so the editor draws it on the node as it does for core previews."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8), "RGB")
    if picture.width > width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))),
                                 Image.Resampling.BILINEAR)
    target, reference = _preview_path(".png")
    picture.save(target, compress_level=1)
    return reference


def save_preview_audio(clip) -> dict:
    """``clip`` (an AudioClip) as a WAV in ComfyUI's temp folder; returns its ``/view`` reference."""
    from .audio.clip import write_wav

    target, reference = _preview_path(".wav")
    write_wav(clip, target)
    return reference
