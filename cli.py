"""``animstudio``: the terminal face. Arguments, progress bars, exit codes; the work is done by ``translator``.

Exit codes: 0 done; 1 unexpected failure; 2 bad storyboard; 3 graph does not fit the engine's nodes;
4 server unreachable or failed; 5 no engine for this graph (no ComfyUI); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .translator.errors import AnimStudioError, RenderInterrupted

log = logging.getLogger("animstudio")


def _server_url(args) -> str | None:
    return getattr(args, "server", None) or os.environ.get("COMFYUI_URL") or None


def _engine(args):
    from .translator.render import LocalEngine, ServerEngine

    url = _server_url(args)
    if url:
        from .translator.client import ComfyClient

        return ServerEngine(ComfyClient(url, timeout=args.timeout))
    from .translator.embedded import EmbeddedEngine

    return LocalEngine(EmbeddedEngine(models_dir=getattr(args, "models_dir", None)))


def _emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(text)


# ------------------------------------------------------------------------------------------ commands

def cmd_validate(args) -> int:
    from .translator.storyboard import load_storyboard

    board = load_storyboard(args.storyboard)
    checked = ""
    if args.object_info or _server_url(args):
        _check_against(args, board, shape="per_shot" if args.per_shot else "film")
        checked = f", and its graph fits {args.object_info or _server_url(args)}"
    total = sum(board.shot_seconds(s) for s in board.shots)
    _emit(args, {"ok": True, "shots": len(board.shots), "seconds": round(total, 3)},
          f"{args.storyboard}: valid: {len(board.shots)} shots, {total:.1f} s{checked}")
    return 0


def _check_against(args, board, shape: str) -> None:
    from .translator.compile import compile_storyboard
    from .translator.graph_check import check_graph, load_object_info

    if args.object_info:
        info = load_object_info(args.object_info)
    else:
        info = _engine(args).object_info()
    for compiled in compile_storyboard(board, shape).graphs:
        check_graph(compiled.graph, info, compiled.node_shots, [u.name for u in compiled.uploads]
                    + ([f"animstudio/shots/{s.id}.mp4" for s in board.shots] if compiled.name == "compose" else []),
                    name=compiled.name)


def cmd_compile(args) -> int:
    from .translator.compile import compile_storyboard
    from .translator.storyboard import load_storyboard

    board = load_storyboard(args.storyboard)
    shape = "per_shot" if args.per_shot else "film"
    compiled = compile_storyboard(board, shape)
    if args.object_info or _server_url(args):
        _check_against(args, board, shape)
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


class BarReporter:
    """Two tqdm bars on stderr: shots done overall, and the node working now."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.overall = self.current = None

    def start(self, shots, graphs):
        if not self.enabled:
            return
        from tqdm import tqdm

        self.overall = tqdm(total=len(shots), desc="shots", unit="shot", position=0, leave=True, file=sys.stderr)
        self.current = tqdm(total=1, desc="", position=1, leave=False, file=sys.stderr, bar_format=
                            "{desc:>24} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}")

    def shot_started(self, shot_id):
        if self.current is not None:
            self.current.set_description_str(shot_id[:24])
            self.current.reset(total=1)

    def shot_progress(self, shot_id, value, maximum):
        if self.current is not None:
            if shot_id:
                self.current.set_description_str(shot_id[:24], refresh=False)
            self.current.total = maximum
            self.current.n = value
            self.current.refresh()

    def shot_done(self, shot_id, cached=False):
        if self.overall is not None:
            self.overall.update(1)
            if cached:
                self.overall.set_postfix_str(f"{shot_id} cached")

    def stage(self, text):
        if self.current is not None:
            self.current.set_description_str(text[:24])
            self.current.reset(total=1)
        else:
            log.info("%s", text)

    def close(self):
        for bar in (self.current, self.overall):
            if bar is not None:
                bar.close()


def cmd_render(args) -> int:
    from .translator.render import render
    from .translator.storyboard import load_storyboard

    board = load_storyboard(args.storyboard)
    engine = _engine(args)
    bars = BarReporter(enabled=not args.json and not args.quiet and sys.stderr.isatty())
    try:
        report = render(board, args.output, engine, "per_shot" if args.per_shot else "film", bars)
    finally:
        bars.close()
    film = Path(args.output) / report.film if report.film else None
    _emit(args, {"ok": True, **report.to_json()},
          f"rendered {len(board.shots)} shots on {report.engine} in {report.seconds:.1f} s: {film}")
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

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="animstudio", description="Storyboard → ComfyUI workflow → animated film.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, server=True):
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if server:
            p.add_argument("--server", help="ComfyUI URL (default: $COMFYUI_URL, else the embedded engine)")
            p.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")

    p = sub.add_parser("validate", help="check a storyboard (and, with --server/--object-info, its graph)")
    p.add_argument("storyboard")
    p.add_argument("--object-info", help="check the graph against a saved /object_info JSON file")
    p.add_argument("--per-shot", action="store_true", help="check the per-shot graphs instead of the film graph")
    common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="write the ComfyUI API-format workflow(s) for a storyboard")
    p.add_argument("storyboard")
    p.add_argument("-o", "--output", required=True, help="workflow .json (film) or a folder (--per-shot)")
    p.add_argument("--per-shot", action="store_true", help="one graph per shot plus a compose graph")
    p.add_argument("--object-info", help="also check against a saved /object_info JSON file")
    common(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("render", help="render a storyboard to an MP4")
    p.add_argument("storyboard")
    p.add_argument("-o", "--output", required=True, help="output folder (film, outputs, render-report.json)")
    p.add_argument("--per-shot", action="store_true", help="render shot by shot (resumable), then compose")
    p.add_argument("--models-dir", help="embedded engine: extra models folder (checkpoints/, loras/, …)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common(p)
    p.set_defaults(func=cmd_render)

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
