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
                frame_index: int = 0) -> tuple[float, float, float, float]:
    """The crop box at time ``t`` (0..1 through the shot) of ``move`` inside ``box`` (the fitted picture)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    cx, cy = left + w / 2, top + h / 2
    e = ease_in_out(t)
    if move in ("zoom_in", "dolly_in"):
        scale = 1.0 + (ZOOM_FACTOR - 1.0) * e
    elif move in ("zoom_out", "dolly_out"):
        scale = ZOOM_FACTOR - (ZOOM_FACTOR - 1.0) * e
    elif move == "static":
        return box
    else:
        scale = SLIDE_ZOOM
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
        dx, dy = (rng.uniform(-1, 1, 2) * np.array([spare_x, spare_y]) * 0.6).tolist()
    x0, y0 = cx - cw / 2 + dx, cy - ch / 2 + dy
    return (x0, y0, x0 + cw, y0 + ch)
