"""``animstudio``: the terminal face. Arguments, progress bars, exit codes; the work is done by ``translator``.

Exit codes: 0 done; 1 unexpected failure; 2 bad storyboard; 3 graph does not fit the engine's nodes;
4 server unreachable or failed; 5 no engine for this graph (no ComfyUI); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from .cli_common import _emit, _engine, _input_error, _server_url
from .cli_progress import BarReporter, _likeness_lines, _sheet_lines, _warning_lines
from .translator.render_qc import qc_lines
from .common.errors import AnimStudioError, RenderInterrupted

log = logging.getLogger("animstudio")


# ------------------------------------------------------------------------------------------ commands

def _object_info_for(args) -> dict:
    from .translator.graph_check import load_object_info

    return load_object_info(args.object_info) if getattr(args, "object_info", None) else _engine(args).object_info()


def cmd_validate(args) -> int:
    from .translator.storyboard import load_storyboard
    from .translator.workflow_file import read_workflow, to_api

    workflow = read_workflow(args.storyboard)
    if workflow is not None:
        from .translator.graph_check import check_graph

        info = _object_info_for(args)
        graph = to_api(*workflow, info)
        check_graph(graph, info, name=args.storyboard)
        _emit(args, {"ok": True, "format": workflow[0], "nodes": len(graph)},
              f"{args.storyboard}: a valid {workflow[0].upper()}-format workflow of {len(graph)} nodes")
        return 0
    board = load_storyboard(args.storyboard)
    if not _server_url(args):  # rendered here: this machine's voices speak and its fonts draw the captions
        from .common.errors import StoryboardError
        from .translator.machine_check import machine_problems

        problems = machine_problems(board)
        if problems:
            raise StoryboardError(f"{args.storyboard}: {len(problems)} problem(s) in the storyboard", problems)
    checked = ""
    info = _engine_info(args)
    if info is not None:
        _check_against(args, board, "per_shot" if args.per_shot else "film", info)
        checked = f", and its graph fits {args.object_info or _server_url(args)}"
    total = sum(board.shot_seconds(s) for s in board.shots)
    from .cli_library import continuity

    warnings, library = continuity(args, board, args.storyboard)
    _emit(args, {"ok": True, "shots": len(board.shots), "seconds": round(total, 3),
                 "warnings": [{"where": w.where, "message": w.message} for w in warnings]},
          f"{args.storyboard}: valid: {len(board.shots)} shots, {total:.1f} s{checked}"
          + (f"; {len(warnings)} continuity warning(s) against {library}:" if warnings else "")
          + "".join(f"\n  warning: {w}" for w in warnings))
    return 0


def _engine_info(args) -> dict | None:
    """The node definitions to check against (``--object-info`` file or ``--server``), or None (no engine named)."""
    return _object_info_for(args) if args.object_info or _server_url(args) else None


def _check_against(args, board, shape: str, info: dict) -> None:
    from .translator.compile import compile_storyboard
    from .translator.graph_check import check_graph

    for compiled in compile_storyboard(board, shape, info).graphs:  # `auto` families settle against the engine
        check_graph(compiled.graph, info, compiled.node_shots, [u.name for u in compiled.uploads]
                    + ([f"animstudio/shots/{s.id}.mp4" for s in board.shots] if compiled.name == "compose" else []),
                    name=compiled.name)


def cmd_compile(args) -> int:
    from .translator.compile import compile_storyboard

    board = _load(args)
    shape = "per_shot" if args.per_shot else "film"
    info = _engine_info(args)
    compiled = compile_storyboard(board, shape, info)
    if info is not None:
        _check_against(args, board, shape, info)
    out = Path(args.output)
    written = []
    if shape == "film":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(compiled.graphs[0].to_json(), encoding="utf-8")
        manifest = out.with_name(out.stem + ".manifest.json")
        written.append(str(out))
    else:
        out.mkdir(parents=True, exist_ok=True)
        for graph in compiled.graphs:
            (out / f"{graph.name}.json").write_text(graph.to_json(), encoding="utf-8")
            written.append(str(out / f"{graph.name}.json"))
        manifest = out / "manifest.json"
    manifest.write_text(json.dumps(compiled.manifest(), indent=2) + "\n", encoding="utf-8")
    nodes = sum(len(g.graph) for g in compiled.graphs)
    _emit(args, {"ok": True, "files": written, "manifest": str(manifest), "nodes": nodes},
          f"wrote {len(written)} graph(s), {nodes} nodes: {', '.join(written)} (+ {manifest})")
    return 0


def _minutes(text: str) -> float:
    """``--max-minutes``: a finite number of minutes, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, 0 or more (0: no limit), got {text!r}")
    return value


def _load(args):
    """The storyboard, with keyframes generated instead of taken from panels when ``--generate`` asks."""
    from .translator.storyboard import load_storyboard

    board = load_storyboard(args.storyboard)
    return board.generated(args.checkpoint, args.steps) if getattr(args, "generate", False) else board


def _render_workflow(args, kind: str, data: dict) -> int:
    """A workflow file rendered as ComfyUI would: its inputs must already be in the engine's input folder."""
    from .translator.client import ComfyClient
    from .translator.graph_check import check_graph
    from .translator.workflow_file import to_api

    engine = _engine(args)
    try:
        graph = to_api(kind, data, engine.object_info())
        check_graph(graph, engine.object_info(), name=args.storyboard)
        out = Path(args.output)
        outputs = engine.run(graph, {}, lambda event, data: None)
        files = [engine.fetch(item, out / "outputs") for item in ComfyClient.output_files(outputs)]
    finally:
        engine.close()
    _emit(args, {"ok": True, "format": kind, "outputs": [str(f) for f in files]},
          f"ran {args.storyboard} ({kind.upper()} format, {len(graph)} nodes) on {engine.name}: "
          + (", ".join(str(f) for f in files) or "no files"))
    return 0


def cmd_convert(args) -> int:
    from .translator.workflow_file import read_workflow, to_api, to_ui

    workflow = read_workflow(args.input)
    if workflow is None:
        raise AnimStudioError(f"{args.input}: not a ComfyUI workflow (UI or API format)")
    kind, data = workflow
    target = args.to or ("api" if kind == "ui" else "ui")
    info = _object_info_for(args)
    result = to_api(kind, data, info) if target == "api" else to_ui(kind, data, info, Path(args.input).stem)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _emit(args, {"ok": True, "from": kind, "to": target, "file": args.output},
          f"wrote {args.output}: {kind.upper()} → {target.upper()} format")
    return 0


def cmd_render(args) -> int:
    from .translator.film_length import check_film_length
    from .translator.render import render
    from .translator.workflow_file import read_workflow

    workflow = read_workflow(args.storyboard)
    if workflow is not None:
        return _render_workflow(args, *workflow)
    board = _load(args)
    check_film_length(board, args.max_minutes)  # before an engine is made: a refused film costs nothing
    from .translator.exports import parse_exports

    exports = parse_exports(args.export)
    if exports and args.single_graph:
        raise _input_error("--export needs each shot's own video: render shot by shot (leave out --single-graph)")
    engine = _engine(args)
    bars = BarReporter(enabled=not args.json and not args.quiet and sys.stderr.isatty())
    try:
        report = render(board, args.output, engine, "film" if args.single_graph else "per_shot", bars,
                        max_minutes=args.max_minutes)
    finally:
        bars.close()
        engine.close()  # the embedded engine's temporary folder goes; the film and outputs are in args.output
    film = Path(args.output) / report.film if report.film else None
    from .cli_library import record_render

    recorded = record_render(args, board, args.storyboard, report, Path(args.output))
    exported = []
    if exports and film is not None:
        from .translator.exports import write_exports

        exported = write_exports(board, Path(args.output), film, exports)
    cached = sum(1 for s in report.shots.values() if s.status == "cached")
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.stages.items())
    _emit(args, {"ok": True, **report.to_json(), "exports": [p.name for p in exported]},
          ("nothing changed: every shot and the film are up to date" if report.up_to_date and cached == len(board.shots)
           else f"rendered {len(board.shots)} shots" + (f" ({cached} from the cache)" if cached else ""))
          + (f", {report.film_seconds:.1f} s of film," if report.film_seconds else "")
          + f" on {report.engine} in {report.seconds:.1f} s ({stages}): {film}" + _sheet_lines(report)
          + _likeness_lines(report) + _warning_lines(report) + qc_lines(report.qc)
          + (f"\n  for editors: {', '.join(p.name for p in exported)}" if exported else "")
          + (f"\n  the episode's shots and lines are in the library {recorded}" if recorded else ""))
    return 0


def cmd_nodes(args) -> int:
    if args.pack_only:
        from .translator.embedded import EmbeddedEngine

        info = EmbeddedEngine().pack_object_info()
    else:
        info = _engine(args).object_info()
    if args.json:
        print(json.dumps(info if args.full else sorted(info), indent=2))
        return 0
    for name in sorted(info):
        print(f"{name:40} {info[name].get('category', '')}")
    print(f"{len(info)} node types", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------ parser

def _version() -> str:
    """The installed distribution's version (pyproject.toml's), else "unknown" (a checkout not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("animstudio")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="animstudio", description="Storyboard → ComfyUI workflow → animated film.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"animstudio {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, server=True):
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if server:
            p.add_argument("--server", help="ComfyUI URL (default: $COMFYUI_URL, else the embedded engine)")
            p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")

    def generation(p):
        p.add_argument("--generate", action="store_true",
                       help="generate every keyframe from the checkpoint instead of using the panels")
        p.add_argument("--checkpoint", help="with --generate: the checkpoint file (default: project.checkpoint)")
        p.add_argument("--steps", type=int, help="with --generate: sampler steps (default: project.steps); "
                                                 "a few for a quick draft")

    p = sub.add_parser("validate", help="check a storyboard (and, with --server/--object-info, its graph) or a workflow")
    p.add_argument("storyboard", help="storyboard JSON, or a workflow (UI or API format)")
    p.add_argument("--object-info", help="check the graph against a saved /object_info JSON file")
    p.add_argument("--per-shot", action="store_true", help="check the per-shot graphs instead of the film graph")
    p.add_argument("--library", metavar="FILE", help="warn where the storyboard contradicts this project library "
                                                     "(default: animstudio-library.db beside it, when there is one)")
    common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="write the ComfyUI API-format workflow(s) for a storyboard")
    p.add_argument("storyboard")
    p.add_argument("-o", "--output", required=True, help="workflow .json (film) or a folder (--per-shot)")
    p.add_argument("--per-shot", action="store_true", help="one graph per shot plus a compose graph")
    p.add_argument("--object-info", help="also check against a saved /object_info JSON file")
    generation(p)
    common(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("render", help="render a storyboard to an MP4 (or run a workflow file)")
    p.add_argument("storyboard", help="storyboard JSON, or a workflow (UI or API format) to run as is")
    p.add_argument("-o", "--output", required=True, help="output folder (film, outputs, render-report.json)")
    p.add_argument("--single-graph", action="store_true",
                   help="render the whole film as one graph (default: shot by shot, each cached by the hash of "
                        "its graph so a re-run renders only what changed, then composed)")
    p.add_argument("--per-shot", action="store_true", help=argparse.SUPPRESS)  # the default since 0.1
    p.add_argument("--models-dir", help="embedded engine: extra models folder (checkpoints/, loras/, …)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--library", metavar="FILE", help="record the rendered shots and lines in this project library "
                                                     "(default: animstudio-library.db beside the storyboard, if any)")
    p.add_argument("--export", metavar="KINDS", default="",
                   help="also write the cut for editors beside the film: any of fcpxml,xml,edl,otio (Final Cut "
                        "Pro, Premiere/Resolve FCP 7 XML, CMX 3600 EDL, OpenTimelineIO), shot videos as media")
    p.add_argument("--max-minutes", type=_minutes, metavar="N",
                   help="refuse a film longer than N minutes before rendering anything (default: "
                        "$ANIMSTUDIO_MAX_FILM_MINUTES, else 180; 0: no limit)")
    generation(p)
    common(p)
    p.set_defaults(func=cmd_render)

    from .cli_plan import add_plan_commands

    add_plan_commands(sub)

    p = sub.add_parser("convert", help="convert a workflow between the editor's UI format and the API format")
    p.add_argument("input", help="workflow JSON (UI or API format)")
    p.add_argument("-o", "--output", required=True, help="the converted workflow JSON")
    p.add_argument("--to", choices=["api", "ui"], help="target format (default: the other one)")
    p.add_argument("--object-info", help="node definitions from a saved /object_info JSON file")
    common(p)
    p.set_defaults(func=cmd_convert)

    from .cli_batch import add_batch_commands
    from .cli_speech import add_speech_commands
    from .cli_library import add_library_commands
    from .cli_qc import add_qc_commands
    from .cli_train import add_train_commands

    add_speech_commands(sub)
    add_batch_commands(sub)
    add_train_commands(sub, common)
    add_qc_commands(sub)
    add_library_commands(sub)

    p = sub.add_parser("nodes", help="list the node types a server or the embedded engine offers")
    p.add_argument("--pack-only", action="store_true", help="only this pack's nodes (no ComfyUI needed)")
    p.add_argument("--full", action="store_true", help="with --json: the full definitions")
    common(p)
    p.set_defaults(func=cmd_nodes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except RenderInterrupted as exc:
        print(f"animstudio: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("animstudio: interrupted", file=sys.stderr)
        return 130
    except AnimStudioError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, **exc.to_json()}, indent=2))
        print(f"animstudio: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
