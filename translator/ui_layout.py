"""How big the graph editor draws a node, where each node of a translated workflow goes, and checks on the result.

A workflow's ``size`` for a node is only a floor: on load the editor (ComfyUI_frontend 1.27.10, the version
ComfyUI 0.3.64 pins) grows every node to ``LGraphNode.computeSize()``, and later grows it again for the widgets
that appear at creation (the pack's timeline and camera preview, core's audio player) or after a run (picture
and video previews), each time into whatever is drawn below it. So a node is measured here as
``computeSize`` will measure it with all of those widgets present, and laid out at that size: then nothing
grows into a neighbour or out of its group. The frontend's rules (``computeSize``, ``#arrangeWidgets``,
``ImagePreviewWidget``, ``fitDimensionsToNodeWidth``, ``BaseDOMWidgetImpl.computeLayoutSize``) are read from
that version's bundle; every row height below includes the 4 px ``computeSize`` puts under each widget.

Layout: one horizontal band per shot (a group titled with the shot id), film-wide nodes first in a band
``film``; inside a band, columns by dependency depth over the whole graph, each as wide as the widest node
of that depth anywhere, so data flows left to right and a column is the same stage in every shot.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .graph_check import _spec_parts, model_folder
from .ui_to_api import AUDIO_UI_TYPES, PACK_AUDIO_UI_TYPES

FILM_GROUP = "film"
TITLE_SEP = " · "  # between the shot id and the role words in a node's title

# ---- LiteGraph's own measures (LiteGraphGlobal, BaseWidget) -------------------------------------------------
TITLE_H = 30          # NODE_TITLE_HEIGHT: the title bar, drawn above a node's ``pos``
SLOT_H = 20           # NODE_SLOT_HEIGHT: one row of sockets
WIDGET_H = 24         # NODE_WIDGET_HEIGHT 20 + 4: a number, combo, toggle, one-line text or button
BODY_PAD = 14         # computeSize: 8 under the last widget, 6 at the bottom (only the 6 without widgets)
TITLE_CHAR_W = 8.4    # NODE_TEXT_SIZE 14 × 0.6: computeSize's own estimate of title text, per character
LABEL_CHAR_W = 7.2    # NODE_SUBTEXT_SIZE 12 × 0.6: the same for socket and widget labels
TITLE_PAD = 40        # NODE_TITLE_HEIGHT before the title text, a third of it after
WIDGET_PAD = 104      # BaseWidget.minValueWidth 42 + 2 × (margin 15 + arrowMargin 6 + arrowWidth 10)
GROUP_HEADER = 34     # LGraphGroup.titleHeight: font_size 24 × 1.4

# ---- widgets that are not plain rows (heights include the 4 px margin) ---------------------------------------
MULTILINE_H = 100     # a multiline text box: DOM widget, 50 px minimum; 100 shows about five lines
# A picture preview (ImagePreviewWidget: Load Image-style nodes at creation, ui.images after a run) needs
# 220 + 4 and fits the picture into the room it gets. 256 leaves a margin over that and shows a square or
# 16:9 picture at a useful size in a 320 px node (the project's width/height is not known here).
IMAGE_PREVIEW_H = 256
# A video player is as tall as the node is wide over the video's aspect (fitDimensionsToNodeWidth, at least
# 64). The film's aspect is not known here: reserve for a square video, the tallest of landscape and square.
VIDEO_ASPECT = 1.0
VIDEO_MIN_H = 64
AUDIO_PLAYER_H = 54   # core's <audio> player (AUDIO_UI): a DOM widget with the 50 px default minimum
TIMELINE_H = 90       # js/node_widgets.js: the Lip Sync node's mouth-cue timeline, getMinHeight 86
CAMERA_PREVIEW_H = 80  # js/node_widgets.js: the camera-move preview, getMinHeight 76

NODE_W = 320          # a node with widgets (the editor's own minimum is 210)
SOCKET_NODE_W = 240   # a node with sockets only
TEXT_NODE_W = 400     # a node with a multiline text box: the frontend's minNodeSize for one when created

COLUMN_GAP = 80       # between the widest node of a column and the next column
NODE_GAP = 40         # between the bottom of one node and the title bar of the next
GROUP_PAD = 20
GROUP_TITLE_H = 50    # room for a group's title above its first node's title bar (GROUP_HEADER and a gap)
BAND_GAP = 60
GROUP_COLOURS = ("#3f789e", "#8A8", "#b58b2a", "#a1309b", "#88A", "#b06634", "#444")
FILM_COLOUR = "#444"

# node types that show ui.images (a picture) or a video after a run; the pack's own set by their ui outputs
IMAGE_OUTPUT_TYPES = frozenset({"SaveImage", "PreviewImage", "AnimStudioShotClip"})
VIDEO_OUTPUT_TYPES = frozenset({"AnimStudioSaveFilm", "SaveVideo", "SaveWEBM"})
# DOM widgets js/node_widgets.js adds when a node is created
PACK_DOM_WIDGETS = {"AnimStudioLipSync": TIMELINE_H, "AnimStudioShotClip": CAMERA_PREVIEW_H,
                    "AnimStudioCameraMove": CAMERA_PREVIEW_H}

NOTE_W = 480
NOTE_COLOUR, NOTE_BGCOLOUR = "#432", "#653"  # LGraphCanvas.node_colors.yellow, what the editor gives a Note


# ------------------------------------------------------------------------------------------------ measuring

def widget_row(spec: Any) -> int:
    """The height one input's own widget takes: a text box for multiline strings, a row for the rest."""
    return MULTILINE_H if _spec_parts(spec)[1].get("multiline") else WIDGET_H


def _upload_flags(class_info: Mapping[str, Any]) -> set[str]:
    flags = set()
    for section in (class_info.get("input") or {}).values():
        for spec in (section or {}).values():
            options = _spec_parts(spec)[1]
            flags |= {f for f in ("image_upload", "animated_image_upload", "video_upload", "audio_upload") if options.get(f)}
    return flags


def added_rows(class_type: str, class_info: Mapping[str, Any]) -> list[int]:
    """Widgets the frontend adds to a node that its definition does not list, at creation: core's audio player
    and upload button on audio loaders, the pack's timeline and camera preview."""
    rows = []
    if class_type in AUDIO_UI_TYPES | PACK_AUDIO_UI_TYPES:
        rows.append(AUDIO_PLAYER_H)
        if "audio_upload" in _upload_flags(class_info):
            rows.append(WIDGET_H)
    if class_type in PACK_DOM_WIDGETS:
        rows.append(PACK_DOM_WIDGETS[class_type])
    return rows


def preview_row(class_type: str, class_info: Mapping[str, Any], width: int) -> int:
    """The room for the picture or video a node shows at creation (an uploaded file) or after a run; 0 if none."""
    flags = _upload_flags(class_info)
    if class_type in VIDEO_OUTPUT_TYPES or "video_upload" in flags:
        return max(math.ceil(width / VIDEO_ASPECT), VIDEO_MIN_H) + 4
    if class_type in IMAGE_OUTPUT_TYPES or flags & {"image_upload", "animated_image_upload"}:
        return IMAGE_PREVIEW_H
    return 0


def node_size(class_type: str, class_info: Mapping[str, Any], title: str, sockets: list[str], outputs: list[str],
              widgets: list[tuple[str, int]]) -> list[int]:
    """``[width, height]`` of a node's body as the editor will draw it with every widget it will ever show.

    ``widgets`` are the definition's widgets as ``(label, row height)``; the frontend's own are added here.
    """
    labels = [label for label, _ in widgets]
    base = TEXT_NODE_W if any(h == MULTILINE_H for _, h in widgets) else NODE_W if widgets else SOCKET_NODE_W
    slots = (max(map(len, sockets), default=0) + max(map(len, outputs), default=0)) * LABEL_CHAR_W + 2 * SLOT_H + 5
    width = max(base, TITLE_PAD + TITLE_CHAR_W * len(title), slots,
                (max(map(len, labels)) * LABEL_CHAR_W + WIDGET_PAD) if labels else 0)
    width = int(math.ceil(width / 10) * 10)
    rows = [h for _, h in widgets] + added_rows(class_type, class_info)
    preview = preview_row(class_type, class_info, width)
    rows += [preview] if preview else []
    height = max(len(sockets), len(outputs), 1) * SLOT_H + sum(rows) + (BODY_PAD if rows else 6)
    return [width, height]


# ------------------------------------------------------------------------------------------------ laying out

def lay_out(graph: Mapping[str, dict], nodes: dict[str, dict], depth: Mapping[str, int],
            node_shots: Mapping[str, str | None], film: str = FILM_GROUP) -> list[dict]:
    """Set every node's ``pos`` from its ``size``; return the groups, one band per shot (film-wide nodes first, in
    a group titled ``film``)."""
    widths: dict[int, int] = {}
    for nid in graph:
        widths[depth[nid]] = max(widths.get(depth[nid], 0), nodes[nid]["size"][0])
    left_of, x = {}, 0
    for column in sorted(widths):
        left_of[column] = x
        x += widths[column] + COLUMN_GAP
    bands: dict[str | None, list[str]] = {}
    if any(node_shots.get(nid) is None for nid in graph):
        bands[None] = []
    for nid in graph:
        bands.setdefault(node_shots.get(nid), []).append(nid)
    groups, top = [], 0
    for index, (shot, members) in enumerate(bands.items()):
        next_y: dict[int, int] = {}
        bottom = top + GROUP_TITLE_H
        for nid in members:
            column = depth[nid]
            y = next_y.get(column, top + GROUP_TITLE_H + TITLE_H)
            nodes[nid]["pos"] = [left_of[column], y]
            next_y[column] = y + nodes[nid]["size"][1] + NODE_GAP + TITLE_H
            bottom = max(bottom, y + nodes[nid]["size"][1])
        left = min(nodes[n]["pos"][0] for n in members) - GROUP_PAD
        right = max(nodes[n]["pos"][0] + nodes[n]["size"][0] for n in members) + GROUP_PAD
        groups.append({
            "id": index + 1, "title": film if shot is None else str(shot),
            "bounding": [left, top, right - left, bottom + GROUP_PAD - top],
            "color": FILM_COLOUR if shot is None else GROUP_COLOURS[index % len(GROUP_COLOURS)],
            "font_size": 24, "flags": {},
        })
        top = bottom + GROUP_PAD + BAND_GAP
    return groups


# ------------------------------------------------------------------------------------------------ checks

def node_rect(node: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of a node as drawn: its body and the title bar above ``pos``."""
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_H, x + w, y + h


def overlaps(workflow: Mapping[str, Any]) -> list[tuple[int, int]]:
    """Pairs of node ids whose drawn rectangles overlap (touching edges do not count)."""
    rects = [(node["id"], node_rect(node)) for node in workflow.get("nodes", [])]
    found = []
    for i, (a_id, a) in enumerate(rects):
        for b_id, b in rects[i + 1:]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                found.append((a_id, b_id))
    return found


def outside_groups(workflow: Mapping[str, Any]) -> list[int]:
    """Ids of translated nodes (those in ``extra.animstudio.node_ids``) not wholly inside the group of their shot,
    below its title bar; the shot is the title's part before ``" · "``."""
    mapped = ((workflow.get("extra") or {}).get("animstudio") or {}).get("node_ids") or {}
    groups = {g.get("title"): g["bounding"] for g in workflow.get("groups", [])}
    outside = []
    for node in workflow.get("nodes", []):
        if str(node["id"]) not in mapped:
            continue
        box = groups.get(str(node.get("title", "")).split(TITLE_SEP, 1)[0])
        x0, y0, x1, y1 = node_rect(node)
        if box is None or not (box[0] <= x0 and x1 <= box[0] + box[2] and box[1] + GROUP_HEADER <= y0
                               and y1 <= box[1] + box[3]):
            outside.append(node["id"])
    return outside


# ------------------------------------------------------------------------------------------------ a note

def model_files(graph: Mapping[str, dict]) -> list[tuple[str, str]]:
    """``(file, folder under models/)`` for every model file the graph's loaders name, each once, sorted."""
    found = set()
    for node in graph.values():
        for name, value in (node.get("inputs") or {}).items():
            folder = model_folder(node.get("class_type", ""), name)
            if folder and isinstance(value, str) and value:
                found.add((value, folder))
    return sorted(found, key=lambda item: (item[1], item[0]))


def model_note(graph: Mapping[str, dict], remarks: Mapping[str, str] | None = None) -> str:
    """The text of a note saying which model files a graph loads and where each goes, for a person who opens the
    workflow without having run the pack's checks; ``remarks`` add a word on some files (file name → text)."""
    files = model_files(graph)
    if not files:
        return "Model files: none. This workflow loads no model files."
    lines = ["Model files this workflow loads: put each in the folder named, then pick it in its loader node "
             "(or pick a file you already have)."]
    for name, folder in files:
        remark = (remarks or {}).get(name)
        lines.append(f"• {name} → ComfyUI/models/{folder}/" + (f" ({remark})" if remark else ""))
    return "\n".join(lines)


def _note_height(text: str) -> int:
    per_line = int((NOTE_W - 20) / LABEL_CHAR_W)
    lines = sum(max(1, math.ceil(len(line) / per_line)) for line in text.split("\n"))
    return max(120, lines * 18 + 40)


def add_note(workflow: dict, text: str, title: str = "Model files") -> dict:
    """Add a core Note node (editor-only: never sent to the server) left of everything, so it covers nothing.

    Written as ``LGraphNode.serialize`` writes the frontend's ``Comfy.NoteNode``; returns the node."""
    nodes = workflow.setdefault("nodes", [])
    boxes = [g["bounding"] for g in workflow.get("groups", [])] + \
            [[r[0], r[1], r[2] - r[0], r[3] - r[1]] for r in map(node_rect, nodes)]
    left = min((b[0] for b in boxes), default=0)
    top = min((b[1] for b in boxes), default=0)
    node_id = max([workflow.get("last_node_id", 0)] + [n["id"] for n in nodes]) + 1
    note = {"id": node_id, "type": "Note", "pos": [left - COLUMN_GAP - NOTE_W, top + TITLE_H],
            "size": [NOTE_W, _note_height(text)], "flags": {}, "order": len(nodes), "mode": 0,
            "inputs": [], "outputs": [], "title": title, "properties": {"text": ""},
            "widgets_values": [text], "color": NOTE_COLOUR, "bgcolor": NOTE_BGCOLOUR}
    nodes.append(note)
    workflow["last_node_id"] = node_id
    return note

