"""``animstudio qc FILM``: quality control of any film file (black and frozen runs, silence under a line, clipping,
sound and picture lengths, loudness and true peak), with the lines from its ``.srt`` and the shots from the
``render-report.json`` beside it when there are."""
from __future__ import annotations

import json
from pathlib import Path

from .cli_common import _emit, _input_error


def add_qc_commands(sub) -> None:
    p = sub.add_parser("qc", help="check a film for black or frozen pictures, silent lines, clipping, length and "
                                  "loudness problems")
    p.add_argument("film", help="a video file (MP4, MOV, WebM, …)")
    p.add_argument("--loudness", type=float, default=-14.0,
                   help="the integrated loudness it should measure, LUFS (default -14; the render's own target when "
                        "its render-report.json is beside it)")
    p.add_argument("--json", action="store_true", help="the result as JSON on stdout: findings (kind, start, end, "
                                                       "shot, detail), loudness, true peak, lengths")
    p.set_defaults(func=cmd_qc)


def cmd_qc(args) -> int:
    from .nodes.film.qc import check_film
    from .nodes.film.sidecars import parse_srt
    from .translator.render_qc import qc_lines

    film = Path(args.film)
    if not film.is_file():
        raise _input_error(f"{film}: file not found")
    srt = film.with_suffix(".srt")
    cues = parse_srt(srt.read_text(encoding="utf-8")) if srt.is_file() else ()
    timeline = []
    report = film.with_name("render-report.json")
    if report.is_file():
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            if Path(str(data.get("film") or "")).name == film.name:
                timeline = [e for e in data.get("timeline") or [] if isinstance(e, dict)]
        except (OSError, ValueError):
            timeline = []
    try:
        result = check_film(film, cues, timeline, args.loudness).to_json()
    except (ValueError, IndexError) as exc:
        raise _input_error(f"{film}: not a video file PyAV can read ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - PyAV's own errors: a file that is not a film
        if type(exc).__module__.startswith("av"):
            raise _input_error(f"{film}: not a video file PyAV can read ({exc})") from None
        raise
    _emit(args, {"ok": True, "film": str(film), **result},
          f"{film}: {result['video_seconds']:.2f} s" + qc_lines(result))
    return 0
