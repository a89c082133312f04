"""What ``animstudio render`` shows while and after it works: progress bars on stderr, and the lines under the
summary (each scored keyframe's likeness, and each warning a shot's nodes gave: a mouth not drawn, a track lost)."""
from __future__ import annotations

import logging
import sys

log = logging.getLogger("animstudio")


def _terminal_size():
    import os

    try:
        return os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return os.terminal_size((0, 0))


class BarReporter:
    """Two tqdm bars on stderr: shots done overall, and the node working now."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.overall = self.current = None

    def start(self, shots, graphs):
        if not self.enabled:
            return
        from tqdm import tqdm

        # a terminal that reports no size (a pty nobody sized: docker exec, some IDE consoles, script) makes tqdm
        # hide every bar (rows 0) or draw an empty one (columns 0): give it the usual size then
        size = _terminal_size()
        shape = {} if size.columns > 0 and size.lines > 0 else {"ncols": 100, "nrows": 24}
        self.overall = tqdm(total=len(shots), desc="shots", unit="shot", position=0, leave=True, file=sys.stderr,
                            **shape)
        self.current = tqdm(total=1, desc="", position=1, leave=False, file=sys.stderr, bar_format=
                            "{desc:>24} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}", **shape)

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


def _likeness_lines(report) -> str:
    """One line per shot whose keyframe was scored: its attempts and the score kept."""
    lines = []
    for shot_id, result in report.shots.items():
        scored = [a for a in result.attempts if a.score is not None]
        if not scored:
            continue
        best = max(scored, key=lambda a: (a.passed, a.score))
        verdict = "passed" if best.passed else "below the threshold, best kept"
        by = "face identity" if "face" in best.methods.values() else "CLIP similarity"
        lines.append(f"\n  {shot_id}: likeness {best.score:.3f} by {by} ({verdict}) after {len(result.attempts)} "
                     "attempt(s): "
                     + ", ".join(f"{a.score:.3f}" for a in scored))
    return "".join(lines)


def _sheet_lines(report) -> str:
    """One line per character sheet the keyframes were edited from (reference keyframe families)."""
    return "".join(f"\n  sheet of {cid}: {path}" for cid, path in report.sheets.items())


def _warning_lines(report) -> str:
    """One line per warning the shots' nodes gave (a mouth not drawn, a lost track), so a headless render says
    what a user in the graph editor would have seen in the server's log."""
    return "".join(f"\n  warning: {text}" for result in report.shots.values() for text in result.warnings)
