"""Post-render quality control (:mod:`..nodes.film.qc`) of a finished film: findings with timecodes and shot ids
from the timeline the Save Film node reported, the lines from the film's subtitle sidecar, a contact sheet of every
shot beside the film; what ``render-report.json`` holds under ``qc``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)


def reported_timeline(outputs: Mapping[str, Any]) -> list[dict]:
    """The timeline a graph's Save Film node reported in its ``ui`` (``[{"shot", "start", "end"}]``), else []."""
    for ui in outputs.values():
        timeline = ui.get("timeline") if isinstance(ui, Mapping) else None
        if isinstance(timeline, list) and all(isinstance(e, Mapping) for e in timeline):
            return [dict(e) for e in timeline]
    return []


def film_qc(film: Path, timeline: list[dict], out_dir: Path, loudness_target: float | None) -> dict:
    """QC ``film`` (its lines from the timeline, else from the ``.srt`` beside it) and draw its contact sheet
    (``<film>-contact.png``). A fault in the check itself is logged and reported, never raised: the film is made
    either way."""
    from ..nodes.film.qc import check_film
    from ..nodes.film.sidecars import parse_srt
    from ..nodes.film.subtitles import SubtitleCue

    srt = film.with_suffix(".srt")
    try:
        lines = [SubtitleCue(float(line["start"]), float(line["end"]), str(line.get("text", "")))
                 for entry in timeline for line in entry.get("lines", ())]
        cues = tuple(lines) if lines else parse_srt(srt.read_text(encoding="utf-8")) if srt.is_file() else ()
        sheet = film.with_name(f"{film.stem}-contact.png") if timeline else None
        result = check_film(film, cues, timeline, loudness_target, sheet).to_json()
        if sheet is not None:
            result["contact_sheet"] = sheet.relative_to(out_dir).as_posix()
        return result
    except Exception as exc:  # noqa: BLE001 - a diagnostic after the work: it must not cost the film
        log.warning("quality control of %s failed: %s", film, exc)
        return {"error": f"quality control failed: {exc}"}


def qc_lines(qc: Mapping[str, Any] | None) -> str:
    """The CLI summary's QC lines: the measurements, then one line per finding with its timecode and shot."""
    if not qc:
        return ""
    if "error" in qc:
        return f"\n  qc: {qc['error']}"
    measured = ", ".join(p for p in (f"{qc['loudness']:.1f} LUFS" if qc.get("loudness") is not None else "",
                                     f"{qc['true_peak']:.1f} dBTP" if qc.get("true_peak") is not None else "") if p)
    findings = qc.get("findings") or []
    head = f"\n  qc: {'clean' if not findings else f'{len(findings)} finding(s)'}" + (f" ({measured})" if measured else "")
    sheet = f"; contact sheet {qc['contact_sheet']}" if qc.get("contact_sheet") else ""
    return head + sheet + "".join(
        f"\n    {f['kind']} {timecode(f['start'])}-{timecode(f['end'])}" + (f" (shot {f['shot']})" if f.get("shot") else "")
        + f": {f['detail']}" for f in findings)


def timecode(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:06.3f}"
