"""The one check every input file goes through: a storyboard's panels, references, control images, music,
mouth-set folders (their contents included) and subtitle fonts.

A file is named relative to an allowed folder (the storyboard's, or ComfyUI's input folder). It is resolved
with its symlinks first, so ``mouths/A.png → /anywhere`` is refused like ``../../x``; it must be a file of an
accepted kind; a picture is opened only as far as its header, with a pixel limit, so a tiny PNG claiming
100000×100000 pixels is refused before anything decodes it. Messages never say whether something outside the
allowed folder exists.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

from .paths import PathEscapeError, resolve_inside

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
MAX_PIXELS = 8192 * 8192  # an 8K square: far above any film frame, far below what fills memory


class InputFileProblem(ValueError):
    """Why a named input file cannot be used, in words for the user (the caller adds the place)."""


def checked_file(base_dir: str | Path, relative: str, suffixes: tuple[str, ...] = (),
                 folder_name: str = "the storyboard's folder") -> Path:
    """``relative`` resolved inside ``base_dir`` (symlinks resolved first), an existing file with one of
    ``suffixes``; pictures readable and within :data:`MAX_PIXELS`, fonts readable by fontTools."""
    path = _resolved(base_dir, relative, folder_name)
    if not path.is_file():
        raise InputFileProblem(f"file not found: {relative!r} (looked in {path.parent})")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputFileProblem(f"{relative!r} is not a supported file ({', '.join(suffixes)})")
    kind_problem = (image_problem(path) if path.suffix.lower() in IMAGE_SUFFIXES
                    else font_problem(path) if path.suffix.lower() in FONT_SUFFIXES else None)
    if kind_problem:
        kind = "image" if path.suffix.lower() in IMAGE_SUFFIXES else "font"
        raise InputFileProblem(f"{relative!r} is not a readable {kind} ({kind_problem})")
    return path


def checked_folder(base_dir: str | Path, relative: str, suffixes: tuple[str, ...],
                   folder_name: str = "the storyboard's folder") -> list[Path]:
    """Every file with one of ``suffixes`` in the folder ``relative`` (not below it), each through
    :func:`checked_file`; a folder that leaves ``base_dir``, is missing, or holds none of them is refused."""
    folder = _resolved(base_dir, relative, folder_name)
    if not folder.is_dir():
        raise InputFileProblem(f"folder not found: {relative!r} (looked in {folder.parent})")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in suffixes)
    if not names:
        raise InputFileProblem(f"the folder {relative!r} holds no {'/'.join(s.lstrip('.') for s in suffixes)} files")
    base_resolved = Path(base_dir).resolve()
    return [checked_file(base_resolved, (folder / name).relative_to(base_resolved).as_posix(), suffixes, folder_name)
            for name in names]


def _resolved(base_dir: str | Path, relative: str, folder_name: str) -> Path:
    """``relative`` inside ``base_dir`` with its symlinks resolved, or the reason it cannot be (never whether
    something exists outside)."""
    try:
        path = resolve_inside(base_dir, relative)
        path.exists()  # a name too long shows itself here (OSError), not in a later check
    except PathEscapeError:
        raise InputFileProblem(f"path {relative[:80]!r} leaves {folder_name} {Path(base_dir)}") from None
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, names too long, symlink loops
        raise InputFileProblem(f"path {relative[:80]!r} is not usable ({type(exc).__name__}: {exc})") from None
    return path


def image_problem(path: Path, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why a picture cannot be used, found from its header (never by decoding a bomb), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    return f"its header claims {width}x{height} = {width * height} pixels; the limit is {max_pixels} pixels"
                image.verify()
    except Image.DecompressionBombError as exc:  # so large that Pillow refuses to open it at all
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        return f"its header claims {claimed.group(1) if claimed else 'too many'} pixels; the limit is {max_pixels} pixels"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return str(exc).replace(str(path), path.name) or type(exc).__name__
    return None


def font_problem(path: Path) -> str | None:
    """Why a font file cannot be read (fontTools), or None."""
    from fontTools.ttLib import TTCollection, TTFont

    try:
        fonts = TTCollection(str(path)).fonts if path.suffix.lower() in (".ttc", ".otc") else [TTFont(str(path), lazy=True)]
        if not fonts or not fonts[0].getBestCmap():
            return "no character map"
    except Exception as exc:  # noqa: BLE001 - fontTools raises many kinds for a broken file
        return type(exc).__name__
    return None
