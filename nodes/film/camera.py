"""Camera moves over a still keyframe: each frame is a crop window of the picture, eased over the shot.

The keyframe is first fitted to the film's aspect ratio; a move then travels a window inside it
(zoom = the window shrinks or grows, pan/tilt = the window slides), so no pixel outside the
picture is ever shown.
"""
from __future__ import annotations

import math

import numpy as np

CAMERA_MOVES = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out",
                "dolly_in", "dolly_out", "shake")

ZOOM_FACTOR = 1.25  # how much tighter the frame ends on a zoom_in
SLIDE_ZOOM = 1.15   # pans and tilts work inside a frame this much tighter


def ease_in_out(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, t)))


def crop_window(move: str, t: float, box: tuple[float, float, float, float], seed: int = 0,
                frame_index: int = 0, strength: float = 1.0) -> tuple[float, float, float, float]:
    """The crop box at time ``t`` (0..1 through the shot) of ``move`` inside ``box`` (the fitted picture).
    ``strength`` scales the move's travel: 0.5 zooms half as far (a gentle push-in), shakes half as wide; a pan,
    tilt or shake goes at most its full travel (the window stays inside the picture)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    cx, cy = left + w / 2, top + h / 2
    if move == "static":
        return box
    travel = min(1.0, strength)
    e = ease_in_out(t) * (strength if "zoom" in move or "dolly" in move else travel)
    if move in ("zoom_in", "dolly_in"):
        scale = 1.0 + (ZOOM_FACTOR - 1.0) * e
    elif move in ("zoom_out", "dolly_out"):
        scale = 1.0 + (ZOOM_FACTOR - 1.0) * (strength - e)
    else:
        scale = 1.0 + (SLIDE_ZOOM - 1.0) * travel
    cw, ch = w / scale, h / scale
    spare_x, spare_y = (w - cw) / 2, (h - ch) / 2
    dx = dy = 0.0
    if move == "pan_left":
        dx = spare_x * (1 - 2 * e)
    elif move == "pan_right":
        dx = -spare_x * (1 - 2 * e)
    elif move == "tilt_up":
        dy = spare_y * (1 - 2 * e)
    elif move == "tilt_down":
        dy = -spare_y * (1 - 2 * e)
    elif move == "shake":
        rng = np.random.default_rng((seed, frame_index))
        dx, dy = (rng.uniform(-1, 1, 2) * np.array([spare_x, spare_y]) * 0.6 * travel).tolist()
    x0, y0 = cx - cw / 2 + dx, cy - ch / 2 + dy
    return (x0, y0, x0 + cw, y0 + ch)
