"""Storyboards kept in ComfyUI's input folder, each as a folder: ``input/<name>/storyboard.json`` beside the panels,
music and mouths it names (its paths are read from its own folder, as the CLI reads them).

The editor's panel lists them, opens one, saves edits back to it, unpacks an uploaded zip into a new one, and on
first use puts the bundled example there. Everything here takes the input folder as an argument and keeps every
path inside it (:func:`~animstudio.common.paths.resolve_inside`); a zip is unpacked member by member under limits
on count and size, never trusting its names.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..common.errors import AnimStudioError, Problem
from ..common.jsonio import check_data, read_json
from ..common.paths import PathEscapeError, resolve_inside, safe_filename, written_atomically

STORYBOARD_FILE = "storyboard.json"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "workflows" / "examples"
MAX_DEPTH = 3            # folders below the input folder searched for storyboards
MAX_LISTED = 500
SKIPPED = {"animstudio"}  # the pack's own working files in the input folder (staged copies, mouth sets)
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_BYTES = 2 << 30  # unpacked; a storyboard folder holds pictures and sound, not films


class StoryboardFolderError(AnimStudioError):
    status = 400


def _folder(input_dir: Path, folder: Any, where: str = "$.folder") -> Path:
    if not isinstance(folder, str) or not folder.strip("/ "):
        raise StoryboardFolderError("no storyboard folder named", [Problem(where, "expected a folder in the input "
                                                                                  "folder, e.g. \"lighthouse\"")])
    try:
        return resolve_inside(input_dir, folder.rstrip("/"))
    except PathEscapeError:
        raise StoryboardFolderError("the folder is outside the input folder",
                                    [Problem(where, f"{folder!r} leaves ComfyUI's input folder")]) from None


def storyboard_base(input_dir: str | Path, folder: Any) -> Path:
    """The folder a storyboard's paths are read from: ``input/<folder>`` (the input folder itself when none)."""
    input_dir = Path(input_dir)
    return input_dir.resolve() if folder in (None, "") else _folder(input_dir, folder)


def _title(path: Path) -> str | None:
    try:
        project = read_json(path, error=StoryboardFolderError).get("project")
        title = project.get("title") if isinstance(project, dict) else None
        return title if isinstance(title, str) else None
    except (AnimStudioError, AttributeError):
        return None


def list_storyboards(input_dir: str | Path) -> list[dict]:
    """Each folder under the input folder (to :data:`MAX_DEPTH` levels) holding a ``storyboard.json``, by name:
    ``{"folder", "title"}`` (``title`` None when the file does not read as a storyboard)."""
    root = Path(input_dir).resolve()
    found: list[dict] = []
    level = [root] if root.is_dir() else []
    for depth in range(MAX_DEPTH + 1):
        following = []
        for folder in level:
            if depth and (folder / STORYBOARD_FILE).is_file():
                found.append({"folder": folder.relative_to(root).as_posix(), "title": _title(folder / STORYBOARD_FILE)})
            if depth == MAX_DEPTH:
                continue
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            following += [p for p in children if not p.name.startswith(".") and not (depth == 0 and p.name in SKIPPED)]
        level = following
        if len(found) >= MAX_LISTED:
            break
    return sorted(found, key=lambda entry: entry["folder"])[:MAX_LISTED]


def open_storyboard(input_dir: str | Path, folder: Any) -> dict:
    """The storyboard JSON of ``input/<folder>/storyboard.json`` as written (validation is the caller's step)."""
    path = _folder(Path(input_dir), folder) / STORYBOARD_FILE
    if not path.is_file():
        raise StoryboardFolderError("no storyboard there", [Problem("$.folder", f"{folder!r} has no {STORYBOARD_FILE}")])
    data = read_json(path, error=StoryboardFolderError)
    if not isinstance(data, dict):
        raise StoryboardFolderError(f"{folder}/{STORYBOARD_FILE} is not a storyboard",
                                    [Problem("$", "expected a JSON object")])
    return data


def save_storyboard(input_dir: str | Path, folder: Any, data: Any) -> Path:
    """Write ``data`` as ``input/<folder>/storyboard.json`` (atomically; work in progress is saved even when it does
    not validate yet). The folder must exist: a storyboard is saved beside its files, not somewhere new."""
    base = _folder(Path(input_dir), folder)
    if not base.is_dir():
        raise StoryboardFolderError("no such storyboard folder", [Problem("$.folder", f"{folder!r} does not exist")])
    if not isinstance(data, dict):
        raise StoryboardFolderError("nothing to save", [Problem("$.storyboard", "expected a storyboard object")])
    check_data(data, "the storyboard", error=StoryboardFolderError)
    path = base / STORYBOARD_FILE
    with written_atomically(path) as partial:
        partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _free_name(root: Path, name: str) -> str:
    candidate, n = name, 2
    while (root / candidate).exists():
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def examples() -> list[dict]:
    """The storyboards bundled with the pack: ``{"name", "title"}``."""
    found = sorted(p.parent for p in EXAMPLES_DIR.glob(f"*/{STORYBOARD_FILE}"))
    return [{"name": p.name, "title": _title(p / STORYBOARD_FILE)} for p in found]


def install_example(input_dir: str | Path, name: Any) -> str:
    """Copy the bundled example ``name`` to ``input/<name>`` (kept as it is when already there); its folder."""
    known = {entry["name"] for entry in examples()}
    if name not in known:
        raise StoryboardFolderError("no such example", [Problem("$.name", f"expected one of {', '.join(sorted(known))}")])
    root = Path(input_dir).resolve()
    target = root / name
    if not (target / STORYBOARD_FILE).is_file():
        target = root / _free_name(root, name)
        shutil.copytree(EXAMPLES_DIR / name, target)
    return target.relative_to(root).as_posix()


def _members(archive: zipfile.ZipFile, where: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The zip's files with safe relative names, the common top folder (if all share one) taken off."""
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise StoryboardFolderError("the zip holds too many files",
                                    [Problem(where, f"{len(infos)} files; at most {MAX_ZIP_MEMBERS}")])
    if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
        raise StoryboardFolderError("the zip is too large unpacked", [Problem(where, f"over {MAX_ZIP_BYTES} bytes")])
    names = []
    for info in infos:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise StoryboardFolderError("the zip names a file outside its folder",
                                        [Problem(where, f"{info.filename!r} (absolute, '..' or a link)")])
        names.append(name)
    # what archivers add beside the files (macOS resource forks, dot files) is left out
    keep = [(i, n) for i, n in zip(infos, names) if not any(p.startswith(".") or p == "__MACOSX" for p in n.parts)]
    tops = {n.parts[0] for _, n in keep if len(n.parts) > 1}
    if len(tops) == 1 and all(len(n.parts) > 1 for _, n in keep):
        keep = [(i, PurePosixPath(*n.parts[1:])) for i, n in keep]
    if not any(str(n) == STORYBOARD_FILE for _, n in keep):
        raise StoryboardFolderError("the zip holds no storyboard",
                                    [Problem(where, f"expected {STORYBOARD_FILE} at its top (or in its one folder)")])
    return keep


def unpack_storyboard_zip(input_dir: str | Path, file: Any) -> str:
    """Unpack an uploaded zip (``input/<file>``) into a new storyboard folder named after it; the zip is removed.
    Returns the new folder. A zip that names a path outside its folder, holds no storyboard, or passes the limits
    is refused whole, and nothing of it is left in the input folder."""
    root = Path(input_dir).resolve()
    try:
        zip_path = resolve_inside(root, file) if isinstance(file, str) and file else None
    except PathEscapeError:
        zip_path = None
    if zip_path is None or not zip_path.is_file():
        raise StoryboardFolderError("no such zip in the input folder", [Problem("$.file", f"{file!r} not found")])
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _members(archive, "$.file")
            stem = safe_filename(zip_path.stem, "storyboard")
            target = root / _free_name(root, stem)
            partial = root / f".{target.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            try:
                for info, name in members:
                    out = resolve_inside(partial, str(name))
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as source, open(out, "wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 20)
                partial.rename(target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StoryboardFolderError("cannot unpack the zip", [Problem("$.file", str(exc)[:200])]) from None
    zip_path.unlink(missing_ok=True)
    return target.relative_to(root).as_posix()
