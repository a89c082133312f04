"""``animstudio library …``: the project library of a series (one SQLite file beside the storyboards).

``add`` puts storyboards in it (their characters, places and style as the series' facts, their shots and lines as
their episode's), after checking them against what it holds; ``search`` finds entries by meaning, in any of the
model's languages; ``list`` shows what it holds; ``put`` adds a fact no storyboard carries (a prop, a style note).
"""
from __future__ import annotations

from pathlib import Path

from .cli_common import _emit


def library_file(args, beside: str | Path | None = None) -> Path:
    """``--library``, else the default file beside the storyboard (or in the current folder)."""
    from .translator.library.store import DEFAULT_NAME

    if getattr(args, "library", None):
        return Path(args.library)
    return (Path(beside).parent if beside else Path.cwd()) / DEFAULT_NAME


def character_faces(board) -> dict[str, list[float]]:
    """Each character's face embedding (dlib's, as the identity check measures it) from their reference pictures and
    sheet, where the ``faces`` extra is installed and a face shows; {} elsewhere."""
    from .nodes.lipsync.faces import available

    if not available():
        return {}
    from .nodes.film.frames import load_rgb
    from .nodes.picture.identity import reference_vector

    out = {}
    for cid, c in board.characters.items():
        pictures = list(c.reference_images) + ([c.sheet] if c.sheet else [])
        vector = reference_vector([load_rgb(p) for p in pictures]) if pictures else None
        if vector is not None:
            out[cid] = [round(float(x), 6) for x in vector]
    return out


def _warnings(library, board, faces: dict) -> list:
    from .nodes.picture.identity import SAME_PERSON_DISTANCE
    from .translator.library.continuity import continuity_warnings

    return continuity_warnings(library, board, faces, SAME_PERSON_DISTANCE)


def continuity(args, board, source: str) -> tuple[list, Path | None]:
    """``validate``'s continuity warnings against the project library: ``--library``, else the one beside the
    storyboard when there is one (none: no warnings)."""
    path = library_file(args, source)
    if not getattr(args, "library", None) and not path.is_file():
        return [], None
    from .translator.library.store import Library

    with Library(path) as library:
        return _warnings(library, board, character_faces(board)), path


def record_render(args, board, source: str, report, out_dir: Path) -> Path | None:
    """After ``render``: the episode's shots, with the files each rendered, and its lines into the project library
    (``--library``, else the one beside the storyboard when there is one)."""
    path = library_file(args, source)
    if not getattr(args, "library", None) and not path.is_file():
        return None
    from .translator.library.ingest import add_storyboard
    from .translator.library.store import Library

    rendered = {sid: [str(out_dir / f) for f in shot.files] for sid, shot in report.shots.items()
                if shot.status in ("rendered", "cached") and shot.files}
    with Library(path, create=True) as library:
        add_storyboard(library, board, Path(source).name, rendered=rendered,
                       film=str(out_dir / report.film) if report.film else None)
    return path


def planning_library(args, beside: str | None):
    """The project library a ``plan`` draws on: ``--library``, else the one beside the output when there is one."""
    path = library_file(args, beside)
    if not getattr(args, "library", None) and not path.is_file():
        return None
    from .translator.library.store import Library

    return Library(path)


def recall_for_request(args, request: str):
    """(bible, style guide) from the project library for a request: the characters and places it names or is
    closest to, and the series' look; (None, None) without a library."""
    library = planning_library(args, args.output)
    if library is None:
        return None, None
    from .translator.library.recall import library_bible, style_guide

    with library:
        bible = library_bible(library, request)
        return (bible if bible else None), style_guide(library, bible.series or None)


def recall_for_series(args, series: str):
    """The characters and places the project library keeps for ``series`` (else for any series), for ``plan
    --from``; None without a library."""
    library = planning_library(args, str(Path(args.output) / "x") if args.output else None)
    if library is None:
        return None
    from .translator.library.recall import series_bible

    with library:
        return series_bible(library, series) or series_bible(library, None)


def add_library_commands(sub) -> None:
    lib = sub.add_parser("library", help="the project library of a series: add storyboards, search it by meaning")
    cmds = lib.add_subparsers(dest="library_command", required=True)

    def where(p):
        p.add_argument("--library", metavar="FILE", help="the library file (default: animstudio-library.db beside "
                                                         "the storyboard, or in the current folder)")
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    p = cmds.add_parser("add", help="put storyboards (episodes) in the library, after a continuity check")
    p.add_argument("storyboards", nargs="+", metavar="STORYBOARD")
    p.add_argument("--episode", type=int, help="the episode number (default: project.episode, else the number in "
                                               "the file name)")
    p.add_argument("--update", action="store_true", help="let these storyboards change the library's facts "
                                                         "(default: the library's facts are canon; a contradiction "
                                                         "is a warning)")
    where(p)
    p.set_defaults(func=cmd_library_add)

    p = cmds.add_parser("search", help="the entries closest in meaning to a query, in any language")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    p.add_argument("--kind", action="append", choices=("character", "place", "prop", "style", "shot", "line"),
                   help="only entries of this kind (repeat for several)")
    p.add_argument("--series", help="only this series")
    where(p)
    p.set_defaults(func=cmd_library_search)

    p = cmds.add_parser("list", help="what the library holds")
    p.add_argument("--kind", choices=("character", "place", "prop", "style", "shot", "line"))
    p.add_argument("--series")
    where(p)
    p.set_defaults(func=cmd_library_list)

    p = cmds.add_parser("put", help="add or replace one fact no storyboard carries (a prop, a style note, a place)")
    p.add_argument("kind", choices=("character", "place", "prop", "style"))
    p.add_argument("key", help="its id in the series (e.g. brass-key)")
    p.add_argument("text", help="what it is, in words (searched by meaning)")
    p.add_argument("--name", help="its display name (default: the key)")
    p.add_argument("--series", default="", help="the series it belongs to")
    where(p)
    p.set_defaults(func=cmd_library_put)


def cmd_library_add(args) -> int:
    from .translator.library.ingest import add_storyboard
    from .translator.library.store import Library
    from .translator.storyboard import load_storyboard

    if args.episode is not None and len(args.storyboards) > 1:
        from .cli_common import _input_error

        raise _input_error("--episode names one storyboard's episode: give one storyboard with it")
    boards = [(s, load_storyboard(s)) for s in args.storyboards]  # every file valid before anything is written
    results = []
    with Library(library_file(args, args.storyboards[0]), create=True) as library:
        for source, board in boards:
            faces = character_faces(board)
            warnings = [] if args.update else _warnings(library, board, faces)
            added = add_storyboard(library, board, Path(source).name, episode=args.episode, update=args.update,
                                   faces=faces)
            results.append({"storyboard": source, "series": added.series, "episode": added.episode,
                            "new": list(added.new), "kept": list(added.kept), "shots": added.shots,
                            "lines": added.lines, "warnings": [{"where": w.where, "message": w.message}
                                                               for w in warnings]})
        path = library.path
    text = []
    for r in results:
        text.append(f"{r['storyboard']}: episode {r['episode']} of {r['series']!r}: {r['shots']} shots, {r['lines']} "
                    f"lines; {len(r['new'])} new facts, {len(r['kept'])} characters already known")
        text += [f"  warning: {w['where']}: {w['message']}" for w in r["warnings"]]
    _emit(args, {"ok": True, "library": str(path), "added": results}, "\n".join(text + [f"library: {path}"]))
    return 0


def cmd_library_search(args) -> int:
    from .translator.library.store import Library

    with Library(library_file(args)) as library:
        hits = library.search(args.query, k=args.k, kinds=args.kind, series=args.series)
    rows = [{"score": round(h.score, 4), **h.entry.to_json()} for h in hits]
    text = [f"{h.score:5.2f}  {h.entry.kind:9} {h.entry.name or h.entry.key}"
            + (f" (episode {h.entry.episode})" if h.entry.episode else "") + f": {_short(h.entry.text)}" for h in hits]
    _emit(args, {"ok": True, "query": args.query, "hits": rows}, "\n".join(text) or "nothing in the library")
    return 0


def cmd_library_list(args) -> int:
    from .translator.library.store import Library

    with Library(library_file(args)) as library:
        entries = library.entries(args.kind, args.series)
        counts = library.count()
    text = [f"{e.kind:9} {e.series or '-'} " + (f"ep {e.episode} " if e.episode else "") + f"{e.key}: {_short(e.text)}"
            for e in entries]
    _emit(args, {"ok": True, "counts": counts, "entries": [e.to_json() for e in entries]},
          "\n".join(text) or "the library is empty")
    return 0


def cmd_library_put(args) -> int:
    from .translator.library.store import Entry, Library

    with Library(library_file(args), create=True) as library:
        entry = Entry(args.kind, args.key, args.text, args.name or args.key, args.series, 0, {"description": args.text},
                      "animstudio library put")
        library.put([entry])
    _emit(args, {"ok": True, "entry": entry.to_json()}, f"put {entry.label()} in {library.path}")
    return 0


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
