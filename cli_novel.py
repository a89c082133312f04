"""``animstudio plan --from TEXT --episodes N -o DIR``: a novel's chapters become N episode storyboards that share
one cast (:mod:`.translator.planning.novel`); the arguments are the ``plan`` command's (``cli.py``)."""
from __future__ import annotations

from pathlib import Path

from .cli_common import _emit


def plan_episodes(args) -> int:
    """``plan --from TEXT --episodes N -o DIR``: a novel's chapters → N episode storyboards sharing one cast."""
    from .translator.planning.backends import PlanError, make_backend
    from .translator.planning.novel import open_novel, plan_novel

    if not args.from_text:
        raise PlanError("--episodes needs --from TEXT (the story to make the episodes from)")
    if args.request or args.stages or args.from_plan:
        raise PlanError(f"{args.from_text}: --from plans from the text; give no request, --stages or --from-plan")
    if not args.output:
        raise PlanError(f"{args.from_text}: name the folder for the episodes with -o DIR")
    novel = open_novel(args.from_text, args.episodes, args.series or "")  # the text is checked before any model
    from .cli_library import recall_for_series

    known = recall_for_series(args, novel.series)  # the project library's cast, reused by name
    backend = make_backend(args.backend, args.model, args.base_url or "", args.repeat_penalty)

    def written(path: Path, board: dict) -> None:
        if not args.json:
            people = ", ".join(c.get("name", cid) for cid, c in board.get("characters", {}).items())
            print(f"wrote {path}: episode {board['project']['episode']}, {len(board['shots'])} shot(s), "
                  f"{people}", flush=True)

    paths = plan_novel(novel, backend, args.output, seed=args.seed, shots=args.shots, checkpoint=args.checkpoint,
                       written=written, known=known)
    _emit(args, {"ok": True, "series": novel.series, "language": novel.language, "files": [str(p) for p in paths],
                 "characters": [c.name for c in novel.bible.characters]},
          f"{len(paths)} episode(s) of {novel.series!r} ({novel.language}) in {args.output}; the synopses and "
          f"characters in {Path(args.output) / 'series.plan.json'}")
    return 0
