"""API-format graph → UI-format workflow (what ComfyUI's editor saves and loads), laid out to be read.

Compiled graphs are API format: what ``/prompt`` runs, but the editor cannot open it as a workflow with
positions, groups and widgets. This writes the editor's own format (schema 0.4, ``zComfyWorkflow`` in
ComfyUI_frontend ``src/platform/workflow/validation/schemas/workflowSchema.ts``), so a person can open a
compiled film, see which nodes belong to which shot, tweak it and queue it.

What follows the frontend exactly, because loading depends on it (``litegraphService`` ``#addInputs``,
``useIntWidget``, ``useImageUploadWidget``, ``LGraphNode.serialize``):

* ``inputs``: first the socket inputs (types without a widget, or ``forceInput``) in definition order, then
  one input per widget, with ``widget: {name}``, in definition order. Definition order is
  ``input_order`` when the server sends it (``/object_info`` JSON may have sorted keys), else dict order,
  required before optional.
* ``widgets_values``: one value per *widget*, linked or not (a linked widget keeps a value in the editor
  too; leaving it out would shift every later value onto the wrong widget when the file is loaded). A
  linked widget gets its definition's default.
* After an INT seed (``control_after_generate`` in its options, or, when the option is absent, named
  ``seed`` / ``noise_seed``) comes the control widget's value; after a combo that asks for one, the
  control value and the (empty) filter list. We write ``"fixed"``: the frontend's default ``randomize``
  would change the compiled seed after the first queue, and API → UI → API must keep it.
* After a combo with ``image_upload`` / ``video_upload`` comes the upload button's value ``"image"``.

Readability: UI ids are integers (the editor's rule), numbered in execution order; the API id
(``s1:sampler``) is kept in ``extra.animstudio.node_ids``, where the pack's panel and error messages find it.
A title says what a node is for, in words, after its shot: ``opening · keyframe sampler``,
``keeper-window · voice``, ``film · music`` (film-wide nodes); class names are on the node already. Each node
is sized and placed by :mod:`.ui_layout` as the editor will draw it, previews and players included.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..common.errors import GraphValidationError, Problem
from .graph_check import combo_options, _spec_parts, is_link, node_place
from .ui_layout import FILM_GROUP, TITLE_SEP, WIDGET_H, lay_out, node_size, widget_row

WORKFLOW_VERSION = 0.4

# widget types of the stock frontend (``widgetStore``); every other type is a socket
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
SEED_NAMES = ("seed", "noise_seed")  # useIntWidget: these get a control widget unless the spec says otherwise
CONTROL_VALUE = "fixed"
UPLOAD_VALUE = "image"  # the upload button's value; the frontend saves it after the file combo

# ------------------------------------------------------------------------------------ node definitions

def _input_order(class_info: Mapping[str, Any]) -> list[tuple[str, Any, bool]]:
    """``(name, spec, optional)`` in definition order: ``input_order`` if given, else the dict's order."""
    inputs = class_info.get("input") or {}
    order = class_info.get("input_order") or {}
    result = []
    for section in ("required", "optional"):
        specs = inputs.get(section) or {}
        names = [n for n in order.get(section, []) if n in specs] + [n for n in specs if n not in order.get(section, [])]
        result += [(name, specs[name], section == "optional") for name in names]
    return result


def _widget_kind(spec: Any) -> str | None:
    """The widget type an input spec gets in the editor, or None for a socket."""
    kind, options = _spec_parts(spec)
    if options.get("forceInput"):
        return None
    if combo_options(kind, options) is not None:
        return "COMBO"
    return kind if kind in WIDGET_TYPES else None


def node_widgets(class_info: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The node's widgets as the editor creates them, one per ``widgets_values`` slot.

    Each is ``(input_name, None)`` for an input's own widget or ``(input_name, extra)`` for a widget the
    frontend adds after it (``"control_after_generate"``, ``"control_filter_list"``, ``"upload"``), whose
    values do not go to the server. A UI → API converter reads ``widgets_values`` by this list.
    """
    widgets: list[tuple[str, str | None]] = []
    for name, spec, _ in _input_order(class_info):
        kind = _widget_kind(spec)
        if kind is None:
            continue
        _, options = _spec_parts(spec)
        widgets.append((name, None))
        control = options.get("control_after_generate")
        if kind == "INT" and control is None:
            control = name in SEED_NAMES
        if control and kind in ("INT", "FLOAT"):
            widgets.append((name, "control_after_generate"))
        elif control and kind == "COMBO":
            widgets += [(name, "control_after_generate"), (name, "control_filter_list")]
        if kind == "COMBO" and (options.get("image_upload") or options.get("video_upload")):
            widgets.append((name, "upload"))
    return widgets


def _default(spec: Any) -> Any:
    """What the editor shows in a widget nobody set (``useIntWidget`` & co.)."""
    kind, options = _spec_parts(spec)
    if "default" in options:
        return options["default"]
    combo = combo_options(kind, options)
    if combo is not None:
        return combo[0] if combo else None
    return {"INT": 0, "FLOAT": 0, "STRING": "", "BOOLEAN": False}.get(kind)


def _slot_type(kind: Any) -> str:
    return "COMBO" if isinstance(kind, (list, tuple)) else str(kind)


# ------------------------------------------------------------------------------------------- structure

def _depths(graph: Mapping[str, dict]) -> dict[str, int]:
    """Longest path from a node without linked inputs: the column a node is drawn in."""
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(node_id: str) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in visiting:
            raise GraphValidationError("The graph has a cycle", [Problem(f"node {node_id!r}", "is part of a cycle")])
        visiting.add(node_id)
        ups = [v[0] for v in graph[node_id].get("inputs", {}).values() if is_link(v) and v[0] in graph]
        depth[node_id] = 1 + max((visit(u) for u in ups), default=-1)
        visiting.discard(node_id)
        return depth[node_id]

    for node_id in graph:
        visit(node_id)
    return depth


# ------------------------------------------------------------------------------------------------ titles

# Role words. Compiled node ids are ``<scope>:<role>``, the scope a shot id or ``film``, or that with a sub-scope
# (``s1:line-1:tts``: the kind ``line``, told apart by ``1``); see translator/templates.py and its callers.
SHOT_ROLES = {  # roles right under a shot's (or the film's) scope
    "panel": "panel", "clip": "shot clip", "append": "append to film", "video": "video clip", "music": "music",
    "save": "save film", "checkpoint": "checkpoint", "clip-vision": "CLIP vision", "positive": "positive prompt",
    "negative": "negative prompt", "latent": "empty latent", "sampler": "keyframe sampler",
    "decode": "decode keyframe", "keyframe": "save keyframe", "guidance": "guidance",
}
SCOPED_ROLES = {  # (sub-scope kind, role) → words
    ("line", "tts"): "voice", ("line", "lipsync"): "lip sync", ("line", "cues"): "save mouth cues",
    ("line", "line"): "dialogue line", ("mouth", "rig"): "mouth rig", ("lora", "lora"): "LoRA",
    ("ipadapter", "ipadapter"): "IP-Adapter", ("consistency", "score"): "likeness score",
    ("dialogue", "join"): "join dialogue", ("talk-audio", "audio"): "dialogue audio", ("start", "panel"): "start frame",
    ("control", "image"): "control picture", ("control", "model"): "ControlNet model",
    ("control", "apply"): "apply ControlNet", ("sheet", "sheet"): "character sheet",
    ("train", "prompt"): "training prompt", ("train", "encode"): "encode pictures", ("train", "train"): "train LoRA",
    ("train", "save"): "save LoRA", ("picture", "load"): "training picture",
}
SCOPE_KINDS = ("motion-vision", "talk-audio", "line", "dialogue", "mouth", "lora", "ipadapter", "consistency",
               "refs", "ref", "subject", "motion", "talk", "start", "control", "picture", "source", "train", "sheet")
KIND_WORDS = {"refs": "reference", "ref": "reference", "motion-vision": "motion", "source": "sheet source"}
ROLE_WORDS = {
    "tts": "voice", "lipsync": "lip sync", "cues": "save mouth cues", "unet": "diffusion model", "vae": "VAE",
    "clip": "text encoder", "text-encoder": "text encoder", "clip-vision": "CLIP vision", "i2v": "image to video",
    "s2v": "sound to video", "humo": "HuMo", "checked": "model check", "audio-encoder": "audio encoder",
    "audio-features": "audio features", "sampler-select": "sampler choice", "lora": "LoRA", "image": "picture",
    "motion-model": "motion model", "ipadapter": "IP-Adapter",
}


def _words(text: str) -> str:
    """An id part read as words (``clip-vision`` → ``clip vision``), for roles no table names."""
    return text.replace("-", " ").replace("_", " ")


def _scope_kind(scope: str) -> tuple[str, str]:
    """``line-1`` → ``("line", "1")``: the kind of a sub-scope and what tells its instances apart."""
    for kind in SCOPE_KINDS:
        if scope == kind or scope.startswith(kind + "-"):
            return kind, scope[len(kind) + 1:]
    return scope, ""


def _role_title(node_id: str, node: Mapping[str, Any], info: Mapping[str, Any],
                shot: str) -> tuple[str, str]:
    """``(words, suffix)``: what the node does, and what tells it from another node with the same words."""
    parts = node_id.split(":")
    scopes, role = (parts[1:-1] if parts[0] in (shot, FILM_GROUP) else parts[:-1]), parts[-1]
    if role.isdigit() or not role:  # an id with no role in it (a hand-made API file): its title or class
        return str((node.get("_meta") or {}).get("title") or info.get("display_name") or node["class_type"]), ""
    if not scopes:
        return SHOT_ROLES.get(role) or ROLE_WORDS.get(role) or _words(role), ""
    kind, tail = _scope_kind(scopes[-1])
    words = SCOPED_ROLES.get((kind, role))
    if words is None:
        kind_words, role_words = KIND_WORDS.get(kind, _words(kind)), ROLE_WORDS.get(role, _words(role))
        words = role_words if kind_words == role_words else f"{kind_words} {role_words}"
    suffix = tail if tail and not tail.isdigit() and len(scopes) == 1 else _words(" ".join(scopes))
    return words, suffix


def film_scope(graph: Mapping[str, dict], node_shots: Mapping[str, str | None], title: str | None) -> str:
    """What film-wide nodes are grouped and titled under: ``film`` beside shots; in a graph with no shot at all (a
    single line, a keyframe alone) there is no film, and the graph's own title names them."""
    return FILM_GROUP if any(node_shots.get(nid) for nid in graph) or not title else title


def node_titles(graph: Mapping[str, dict], object_info: Mapping[str, dict],
                node_shots: Mapping[str, str | None], film: str = FILM_GROUP) -> dict[str, str]:
    """Each node's title, ``<shot> · <role in words>`` (``film`` for film-wide nodes), unique within its shot: the
    words get their sub-scope (``voice (line 2)``) where two nodes would share them, then a number."""
    shots = {nid: node_shots.get(nid) or film for nid in graph}
    found = {nid: _role_title(nid, graph[nid], object_info[graph[nid]["class_type"]], shots[nid]) for nid in graph}
    count: dict[tuple[str, str], int] = {}
    for nid, (words, _) in found.items():
        count[shots[nid], words] = count.get((shots[nid], words), 0) + 1
    titles = {nid: words + (f" ({suffix})" if suffix and count[shots[nid], words] > 1 else "")
              for nid, (words, suffix) in found.items()}
    seen: dict[tuple[str, str], int] = {}
    for nid, words in titles.items():
        seen[shots[nid], words] = seen.get((shots[nid], words), 0) + 1
        number = seen[shots[nid], words]
        titles[nid] = f"{shots[nid]}{TITLE_SEP}{words}" + (f" {number}" if number > 1 else "")
    return titles


def _check(graph: Mapping[str, dict], object_info: Mapping[str, dict], node_shots: Mapping[str, str | None]) -> None:
    problems = []
    for node_id, node in graph.items():
        class_type = node.get("class_type")
        place = node_place(node_id, class_type, node_shots)
        info = object_info.get(class_type) if class_type else None
        if info is None:
            problems.append(Problem(place, f"node type {class_type!r} is not among the node definitions"))
            continue
        known = {name for name, _, _ in _input_order(info)}
        for name, value in (node.get("inputs") or {}).items():
            if name not in known:
                problems.append(Problem(place, f"input {name!r} is not in {class_type}'s definition"))
            elif is_link(value):
                source = graph.get(value[0])
                if source is None:
                    problems.append(Problem(place, f"input {name!r} links to missing node {value[0]!r}"))
                    continue
                outputs = (object_info.get(source.get("class_type")) or {}).get("output", [])
                if source.get("class_type") in object_info and not 0 <= value[1] < len(outputs):
                    problems.append(Problem(place, f"input {name!r} links to output {value[1]} of {value[0]!r}, "
                                                   f"which has {len(outputs)} outputs"))
    if problems:
        raise GraphValidationError("The graph cannot be drawn as a workflow", problems)


def _ui_node(node: Mapping[str, Any], info: Mapping[str, Any], ui_id: int, title: str) -> dict:
    """One node as the editor saves it (links not yet set), sized as it will be drawn."""
    class_type = node["class_type"]
    given = node.get("inputs") or {}
    sockets, widget_inputs, rows = [], [], []
    specs = {name: spec for name, spec, _ in _input_order(info)}
    for name, spec in specs.items():
        kind, _ = _spec_parts(spec)
        if _widget_kind(spec) is None:
            sockets.append({"name": name, "type": _slot_type(kind), "link": None})
        else:
            widget_inputs.append({"name": name, "type": _slot_type(kind), "widget": {"name": name}, "link": None})
    values = []
    for name, extra in node_widgets(info):
        rows.append((name, widget_row(specs[name])) if extra is None else (extra, WIDGET_H))
        if extra == "control_after_generate":
            values.append(CONTROL_VALUE)
        elif extra == "control_filter_list":
            values.append("")
        elif extra == "upload":
            values.append(UPLOAD_VALUE)
        else:
            value = given.get(name)
            values.append(_default(specs[name]) if name not in given or is_link(value) else value)
    names = info.get("output_name") or []
    outputs = [{"name": names[i] if i < len(names) and names[i] else _slot_type(kind),
                "type": _slot_type(kind), "links": [], "slot_index": i}
               for i, kind in enumerate(info.get("output") or [])]
    size = node_size(class_type, info, title, [s["name"] for s in sockets], [o["name"] for o in outputs], rows)
    return {
        "id": ui_id, "type": class_type, "pos": [0, 0], "size": size,
        "flags": {}, "order": ui_id - 1, "mode": 0,
        "inputs": sockets + widget_inputs, "outputs": outputs,
        "title": title,
        "properties": {"Node name for S&R": class_type},
        "widgets_values": values,
    }


def api_to_ui(graph: Mapping[str, dict], object_info: Mapping[str, dict],
              node_shots: Mapping[str, str | None] | None = None, title: str | None = None) -> dict:
    """The editor's workflow for an API-format graph: nodes, links, one group per shot, laid out left to right.

    ``object_info`` gives each node's inputs (which are widgets, their order, their defaults) and outputs;
    ``node_shots`` (node id → shot id, None for film-wide nodes) gives the groups; ``title`` (the editor's
    format has no place for one) is kept as ``extra.animstudio.title``. Raises
    :class:`GraphValidationError` naming every node that does not fit its definition.
    """
    node_shots = dict(node_shots or {})
    _check(graph, object_info, node_shots)
    depth = _depths(graph)
    # execution order: by depth, ties kept in graph order; UI ids follow it (1-based, like the editor)
    position = {nid: i for i, nid in enumerate(graph)}
    order = sorted(graph, key=lambda nid: (depth[nid], position[nid]))
    ui_id = {nid: i + 1 for i, nid in enumerate(order)}

    film = film_scope(graph, node_shots, title)
    titles = node_titles(graph, object_info, node_shots, film)
    nodes = {nid: _ui_node(graph[nid], object_info[graph[nid]["class_type"]], ui_id[nid], titles[nid])
             for nid in order}

    links = []
    for nid in order:
        target = nodes[nid]
        for slot, entry in enumerate(target["inputs"]):
            value = (graph[nid].get("inputs") or {}).get(entry["name"])
            if not is_link(value):
                continue
            origin = nodes[value[0]]
            link_id = len(links) + 1
            link_type = origin["outputs"][value[1]]["type"]
            links.append([link_id, origin["id"], value[1], target["id"], slot, link_type])
            entry["link"] = link_id
            origin["outputs"][value[1]]["links"].append(link_id)
    for node in nodes.values():
        for output in node["outputs"]:
            if not output["links"]:
                output["links"] = None  # what the editor writes for an unconnected output

    groups = lay_out(graph, nodes, depth, node_shots, film)
    animstudio: dict[str, Any] = {"node_ids": {str(ui_id[nid]): nid for nid in order}}
    if title:
        animstudio["title"] = title
    return {
        "last_node_id": len(order),
        "last_link_id": len(links),
        "nodes": [nodes[nid] for nid in order],
        "links": links,
        "groups": groups,
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}, "animstudio": animstudio},
        "version": WORKFLOW_VERSION,
    }


# ------------------------------------------------------------------------------------------- reading back

def ui_node_ids(workflow: Mapping[str, Any]) -> dict[int, str]:
    """UI node id → API node id, from ``extra.animstudio.node_ids`` (the id itself where a node is not listed)."""
    mapped = ((workflow.get("extra") or {}).get("animstudio") or {}).get("node_ids") or {}
    return {node["id"]: mapped.get(str(node["id"]), str(node["id"])) for node in workflow.get("nodes", [])}


def api_ids(prompt: Mapping[str, dict], workflow: Mapping[str, Any]) -> dict[str, dict]:
    """An API graph made from ``workflow`` (ids are UI ids as strings) renamed to the original API ids.

    Rewrites links too, so ``api_ids(ui_to_api(api_to_ui(g)), api_to_ui(g))`` is comparable with ``g``.
    """
    names = {str(k): v for k, v in ui_node_ids(workflow).items()}
    renamed = {}
    for nid, node in prompt.items():
        node = dict(node)
        node["inputs"] = {k: ([names.get(v[0], v[0]), v[1]] if is_link(v) else v)
                          for k, v in (node.get("inputs") or {}).items()}
        renamed[names.get(str(nid), str(nid))] = node
    return renamed
