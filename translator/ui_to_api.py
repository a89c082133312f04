"""ComfyUI's UI workflow format (what the editor saves) → API format (what ``/prompt`` takes).

A port of the official frontend's ``graphToPrompt`` (``src/utils/executionUtil.ts``) and the link
resolution it delegates to (``ExecutableNodeDTO`` in ``src/lib/litegraph/src/subgraph``), read from
ComfyUI_frontend 1.27.10, the ``comfyui-frontend-package`` ComfyUI 0.3.64 pins. A saved workflow is a
picture of the editor, not a program: widget values sit in a positional list whose layout depends on
which widgets the frontend builds for each node type, reroutes and primitives are editor-only nodes,
muted and bypassed nodes are still in the file, and subgraphs are stored once and instanced. So the
conversion needs the node definitions (``/object_info``) and has to mirror the frontend's rules
exactly, or a converted graph would run with shifted values. Frontend line references in comments
are to that 1.27.10 source.

What is deliberately different: the frontend sends a node whose type it does not know without a
``class_type`` and lets the server fail; here that is a :class:`WorkflowFormatError` naming the node.
Dynamic prompts (``{a|b}`` in ``dynamicPrompts`` text widgets) pick with ``rng`` (seedable for tests).
``control_after_generate`` is assumed to run *after* queueing (the frontend's default), so the saved
seed is sent as is.
"""
from __future__ import annotations

import logging
import random
import re
from itertools import zip_longest
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..common.errors import AnimStudioError, Problem
from .graph_check import _spec_parts

log = logging.getLogger(__name__)

MODE_NEVER = 2   # LGraphEventMode.NEVER: "muted"
MODE_BYPASS = 4  # LGraphEventMode.BYPASS
SUBGRAPH_INPUT_ID = -10   # litegraph constants.ts: the id links use for a subgraph's input node
SUBGRAPH_OUTPUT_ID = -20
# node types the frontend registers itself, all ``isVirtualNode`` (never sent to the server)
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
# scripts/widgets.ts ComfyWidgets: input types that get a widget rather than only a socket
WIDGET_TYPES = frozenset({"INT", "FLOAT", "BOOLEAN", "STRING", "MARKDOWN", "COMBO", "IMAGEUPLOAD", "FILEUPLOAD",
                          "COLOR", "IMAGECOMPARE", "TREESELECT", "MULTISELECT", "CHART", "GALLERIA",
                          "SELECTBUTTON", "TEXTAREA", "AUDIO_UI", "PREVIEW_3D", "PREVIEW_3D_ANIMATION", "AUDIOUPLOAD",
                          "AUDIO_RECORD"})
# extensions/core/load3d.ts (Comfy.Preview3D, Comfy.Preview3DAnimation): these gain a ``required.image`` viewer widget
PREVIEW_3D_TYPES = {"Preview3D": "PREVIEW_3D", "Preview3DAnimation": "PREVIEW_3D_ANIMATION"}
# extensions/core/uploadAudio.ts (Comfy.AudioWidget): these node types gain a ``required.audioUI`` DOM widget
AUDIO_UI_TYPES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
PACK_AUDIO_UI_TYPES = frozenset({"AnimStudioLoadAudio"})
_UNSET = object()  # a JS ``undefined`` value: JSON.stringify leaves such an input out


class WorkflowFormatError(AnimStudioError):
    """A UI-format workflow is malformed, or names something the node definitions do not have."""

    exit_code = 2


def is_ui_workflow(data: Any) -> bool:
    """UI format has ``nodes`` and ``links`` lists; API format is an object of ``{class_type, inputs}`` nodes."""
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list)


# --- widgets a node type gets, from its definition -----------------------------------------------

@dataclass
class _Widget:
    name: str
    value: Any
    in_prompt: bool = True          # False: options.serialize === false (control, upload button)
    dynamic_prompts: bool = False
    fixed: bool = False             # a DOM widget without getValue: its value is always '' (saved values ignored)


@dataclass
class _NodeType:
    """What the frontend builds for one node type: its input sockets (in order) and its widgets."""

    inputs: list[tuple[str, str, bool]]   # (name, type, has a widget)
    widgets: list[_Widget]
    outputs: list[str]
    title: str
    migrate_specs: list[tuple[str, dict]]  # for migrateWidgetsValues


def _ordered_specs(definition: Mapping[str, Any]) -> list[tuple[str, Any, bool]]:
    """``getOrderedInputSpecs`` (utils/nodeDefOrderingUtil.ts:13): required then optional, by ``input_order``."""
    declared = definition.get("input") or {}
    required = dict(declared.get("required") or {})
    optional = dict(declared.get("optional") or {})
    # extension-added inputs (beforeRegisterNodeDef): uploadAudio.ts audioUI then upload, saveMesh.ts SaveGLB image
    if definition.get("name") in AUDIO_UI_TYPES:
        required["audioUI"] = ["AUDIO_UI", {}]
    elif definition.get("name") in PACK_AUDIO_UI_TYPES and "audio" in required:
        # the pack's extension (js/animstudio.js) gives its Load Audio core's player, right after ``audio``
        required = {k: v for name, spec in required.items()
                    for k, v in ((name, spec), ("audioUI", ["AUDIO_UI", {}]))[: 2 if name == "audio" else 1]}
    if definition.get("name") in AUDIO_UI_TYPES | PACK_AUDIO_UI_TYPES:
        for name, spec in list(required.items()):
            kind, opts = _spec_parts(spec)
            if opts.get("audio_upload") is True:
                required["upload"] = ["AUDIOUPLOAD", {**opts, "audioInputName": name}]
                break
    if definition.get("name") == "SaveGLB":
        required["image"] = ["PREVIEW_3D", {}]
    if definition.get("name") in PREVIEW_3D_TYPES:
        required["image"] = [PREVIEW_3D_TYPES[definition["name"]], {}]
    # extensions/core/uploadImage.ts: a combo with image/video upload gains a ``required.upload`` input
    for name, spec in list(required.items()):
        kind, opts = _spec_parts(spec)
        if (opts.get("image_upload") is True or opts.get("video_upload") is True
                or opts.get("animated_image_upload") is True) and (isinstance(kind, (list, tuple)) or kind == "COMBO"):
            required["upload"] = ["IMAGEUPLOAD", {**opts, "imageInputName": name}]
            break
    inputs = {**{n: (s, False) for n, s in required.items()}, **{n: (s, True) for n, s in optional.items()}}
    order = definition.get("input_order")
    if not order:
        return [(n, s, o) for n, (s, o) in inputs.items()]
    result, seen = [], set()
    for group, is_optional in (("required", False), ("optional", True)):
        for name in order.get(group) or []:
            if name in inputs and inputs[name][1] == is_optional and name not in seen:
                result.append((name, *inputs[name]))
                seen.add(name)
    result += [(n, s, o) for n, (s, o) in inputs.items() if n not in seen]
    return result


def _widgets_for(name: str, kind: str, opts: dict) -> list[_Widget]:
    """The widgets one input makes (renderer/extensions/vueNodes/widgets/composables/use*Widget.ts)."""
    if kind == "INT":
        main = _Widget(name, opts.get("default") if opts.get("default") is not None else 0)
        # useIntWidget.ts:74-78: ``control_after_generate ?? name in (seed, noise_seed)``
        control = opts["control_after_generate"] if opts.get("control_after_generate") is not None \
            else name in ("seed", "noise_seed")
        # scripts/widgets.ts:120-128: the control combo has ``serialize: false`` (not in the prompt)
        return [main] + ([_Widget("control_after_generate", "randomize", in_prompt=False)] if control else [])
    if kind == "FLOAT":
        return [_Widget(name, opts.get("default") if opts.get("default") is not None else 0)]
    if kind == "BOOLEAN":
        return [_Widget(name, opts.get("default") if opts.get("default") is not None else False)]
    if kind == "STRING":
        return [_Widget(name, opts.get("default") if opts.get("default") is not None else "",
                        dynamic_prompts=opts.get("dynamicPrompts") is True)]
    if kind == "MARKDOWN":
        return [_Widget(name, opts.get("default") if opts.get("default") is not None else "")]
    if kind == "COMBO":
        values = list(opts.get("options") or [])
        if opts.get("multi_select"):
            return [_Widget(name, [])]
        # useComboWidget.ts:31-36 getDefaultValue
        default = opts["default"] if opts.get("default") else values[0] if values else \
            "Loading..." if opts.get("remote") else _UNSET
        widgets = [_Widget(name, default)]
        remote = opts.get("remote")
        if isinstance(remote, Mapping):
            # useRemoteWidget.ts: an "Auto-refresh after generation" toggle (serialize: false), then with
            # ``refresh_button`` a button widget "refresh" whose value "refresh" goes in the prompt
            widgets.append(_Widget("Auto-refresh after generation", False, in_prompt=False))
            if remote.get("refresh_button"):
                widgets.append(_Widget("refresh", "refresh"))
        if opts.get("control_after_generate"):
            # widgets.ts:110-160: a control combo plus a filter-list string, both ``serialize: false``
            widgets += [_Widget("control_after_generate", "randomize", in_prompt=False),
                        _Widget("control_filter_list", "", in_prompt=False)]
        return widgets
    if kind in ("AUDIO_UI", "PREVIEW_3D", "PREVIEW_3D_ANIMATION"):
        return [_Widget(name, "", fixed=True)]
    if kind == "AUDIO_RECORD":
        # extensions/core/uploadAudio.ts (Comfy.RecordAudio): a DOM player named after the input whose value is ''
        # until something is recorded, then a record button of the same name (its saved value, '' as made)
        return [_Widget(name, "", fixed=True), _Widget(name, "")]
    if kind == "AUDIOUPLOAD":
        return [_Widget(name, "", in_prompt=False)]
    if kind == "IMAGEUPLOAD":
        # useImageUploadWidget.ts:100-108: a button widget named after the input, value "image", not in the prompt
        return [_Widget(name, "image", in_prompt=False)]
    return [_Widget(name, opts.get("default", _UNSET))]


def _node_type(type_name: str, definition: Mapping[str, Any]) -> _NodeType:
    sockets: list[tuple[str, str, bool]] = []
    widget_inputs: list[tuple[str, str, bool]] = []
    widgets: list[_Widget] = []
    migrate: list[tuple[str, dict]] = []
    for name, spec, _optional in _ordered_specs(definition):
        raw_kind, opts = _spec_parts(spec)
        kind = "COMBO" if isinstance(raw_kind, (list, tuple)) else str(raw_kind)
        if isinstance(raw_kind, (list, tuple)):
            opts = {**opts, "options": list(raw_kind)}
        migrate.append((name, opts))
        # litegraphService.ts:182-247: sockets for non-widget (or forceInput) inputs first, then every widget
        # input also gets a socket carrying ``widget: {name}``
        if kind in WIDGET_TYPES and not opts.get("forceInput"):
            widgets += _widgets_for(name, kind, opts)
            widget_inputs.append((name, kind, True))
        else:
            sockets.append((name, kind, False))
    outputs = ["COMBO" if isinstance(o, (list, tuple)) else str(o) for o in definition.get("output") or []]
    title = definition.get("display_name") or definition.get("name") or type_name
    if (definition.get("name") or type_name) == "PreviewAny":
        # extensions/core/previewAny.ts: onNodeCreated adds a multiline STRING "preview" widget after the others
        widgets.append(_Widget("preview", "", fixed=True))
    return _NodeType(sockets + widget_inputs, widgets, outputs, title, migrate)


def _names_missing_widget(saved_input: Mapping, widget_names: set[str]) -> bool:
    widget = saved_input.get("widget")
    return isinstance(widget, Mapping) and widget.get("name") not in widget_names


def _migrate_widgets_values(node_type: _NodeType, values: list) -> list:
    """``migrateWidgetsValues`` (utils/litegraphUtil.ts:105): drop slots that old saves kept for forceInput inputs."""
    names = {w.name for w in node_type.widgets}
    specs = [(n, o) for n, o in node_type.migrate_specs if n in names or o.get("forceInput")]
    count = sum(2 if (o.get("control_after_generate") or n in ("seed", "noise_seed")) else 1 for n, o in specs)
    if count == len(values):
        # lodash ``_.zip`` pads the shorter list with undefined (kept: ``!input?.forceInput``), unlike Python's zip
        return [v for (n, o), v in zip_longest(specs, values, fillvalue=(None, {})) if not o.get("forceInput")]
    return values


# --- the graph, as the frontend holds it after loading ---------------------------------------------

@dataclass
class _Link:
    id: str
    origin_id: str
    origin_slot: int
    target_id: str
    target_slot: int


@dataclass
class _Graph:
    where: str
    nodes: dict[str, dict] = field(default_factory=dict)       # id -> saved node
    places: dict[str, str] = field(default_factory=dict)       # id -> "nodes[3]"
    links: dict[str, _Link] = field(default_factory=dict)
    definition: dict | None = None                              # the subgraph definition, None for the root


@dataclass
class _Dto:
    """``ExecutableNodeDTO``: one node at one place in the flattened network."""

    id: str
    node_id: str
    raw: dict
    place: str
    graph: _Graph
    path: tuple[str, ...]
    subgraph_node: "_Dto | None"          # the instance whose subgraph holds this node
    inputs: list[tuple[str, str, str | None]]   # (name, type, link id)
    outputs: list[str]
    widgets: list[_Widget]
    title: str
    class_type: str | None
    virtual: bool
    subgraph: _Graph | None = None        # set on subgraph instances

    @property
    def mode(self) -> int:
        return self.raw.get("mode") or 0


def _link_from(raw: Any, where: str) -> _Link:
    if isinstance(raw, list) and len(raw) >= 5:
        return _Link(str(raw[0]), str(raw[1]), int(raw[2]), str(raw[3]), int(raw[4]))
    if isinstance(raw, Mapping) and all(k in raw for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot")):
        return _Link(str(raw["id"]), str(raw["origin_id"]), int(raw["origin_slot"]),
                     str(raw["target_id"]), int(raw["target_slot"]))
    raise WorkflowFormatError("malformed workflow", [Problem(where, "a link must be [id, origin_id, origin_slot, "
                                                                    "target_id, target_slot, type] or an object")])


def _graph_from(data: Mapping[str, Any], where: str, definition: dict | None = None) -> _Graph:
    nodes, links = data.get("nodes"), data.get("links")
    if not isinstance(nodes, list):
        raise WorkflowFormatError("malformed workflow", [Problem(f"{where}nodes", "must be a list")])
    if links is None:
        links = []
    if not isinstance(links, list):
        raise WorkflowFormatError("malformed workflow", [Problem(f"{where}links", "must be a list")])
    graph = _Graph(where, definition=definition)
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping) or "id" not in node or not isinstance(node.get("type"), str):
            raise WorkflowFormatError("malformed workflow", [Problem(f"{where}nodes[{i}]", "a node needs an id and a type")])
        graph.nodes[str(node["id"])] = node
        graph.places[str(node["id"])] = f"{where}nodes[{i}]"
    for i, raw in enumerate(links):
        if raw is None:
            continue
        link = _link_from(raw, f"{where}links[{i}]")
        graph.links[link.id] = link
    return graph


class _Converter:
    def __init__(self, workflow: Mapping[str, Any], object_info: Mapping[str, dict], rng: random.Random):
        self.object_info = object_info
        self.rng = rng
        self.types: dict[str, _NodeType] = {}
        self.dtos: dict[str, _Dto] = {}
        self.problems: list[Problem] = []
        subgraphs = ((workflow.get("definitions") or {}).get("subgraphs")) or []
        if not isinstance(subgraphs, list):
            raise WorkflowFormatError("malformed workflow", [Problem("definitions.subgraphs", "must be a list")])
        self.subgraphs: dict[str, tuple[dict, str]] = {}
        for i, sub in enumerate(subgraphs):
            if not isinstance(sub, Mapping) or not isinstance(sub.get("id"), str):
                raise WorkflowFormatError("malformed workflow", [Problem(f"definitions.subgraphs[{i}]", "needs an id")])
            self.subgraphs[sub["id"]] = (sub, f"definitions.subgraphs[{i}].")
        self.root = _graph_from(workflow, "")

    def node_type(self, type_name: str) -> _NodeType | None:
        if type_name not in self.types:
            definition = self.object_info.get(type_name)
            if definition is None:
                return None
            self.types[type_name] = _node_type(type_name, definition)
        return self.types[type_name]

    # building the DTO map (executionUtil.ts:62-73, SubgraphNode.ts getInnerNodes)
    def add_graph(self, graph: _Graph, path: tuple[str, ...], instance: _Dto | None, stack: tuple[str, ...]) -> None:
        for node_id, raw in graph.nodes.items():
            dto = self.make_dto(graph, node_id, raw, path, instance)
            if dto is None:
                continue
            self.dtos[dto.id] = dto
            if dto.subgraph is not None:
                sub_id = raw["type"]
                if sub_id in stack:
                    raise WorkflowFormatError("malformed workflow", [Problem(dto.place, f"subgraph {sub_id!r} contains itself")])
                self.add_graph(dto.subgraph, path + (node_id,), dto, stack + (sub_id,))

    def make_dto(self, graph: _Graph, node_id: str, raw: dict, path: tuple[str, ...], instance: _Dto | None) -> _Dto | None:
        place, type_name = graph.places[node_id], raw["type"]
        saved_inputs = raw.get("inputs") or []
        if not isinstance(saved_inputs, list):
            self.problems.append(Problem(f"{place}.inputs", "must be a list"))
            return None
        links_by_name: dict[str, str | None] = {}
        for j, slot in enumerate(saved_inputs):
            if not isinstance(slot, Mapping) or "name" not in slot:
                self.problems.append(Problem(f"{place}.inputs[{j}]", "an input needs a name"))
                return None
            link = slot.get("link")
            links_by_name[slot["name"]] = None if link is None else str(link)
        exec_id = ":".join(path + (node_id,))
        common = dict(id=exec_id, node_id=node_id, raw=raw, place=place, graph=graph, path=path, subgraph_node=instance)
        if type_name in self.subgraphs:
            sub, where = self.subgraphs[type_name]
            subgraph = _graph_from(sub, where, sub)
            # ComfyNode.configure (litegraphService.ts) rebuilds the saved inputs in the order of the subgraph's
            # own inputs (extra saved ones after them), so a link from the subgraph's input slot n reaches the
            # instance's input n; _internalConfigureAfterSlots then promotes one widget per subgraph input
            # whose first inner link ends at a widget input (SubgraphNode.ts:268-313)
            declared = [(str(s.get("name")), str(s.get("type", "*"))) for s in sub.get("inputs") or []
                        if isinstance(s, Mapping)]
            declared_names = {name for name, _ in declared}
            inputs = [(name, kind, links_by_name.get(name)) for name, kind in declared]
            inputs += [(s["name"], str(s.get("type", "*")), links_by_name.get(s["name"]))
                       for s in saved_inputs if s["name"] not in declared_names]
            widgets = self.promoted_widgets(subgraph, raw, place)
            outputs = [str(o.get("type", "*")) for o in sub.get("outputs") or [] if isinstance(o, Mapping)]
            return _Dto(**common, inputs=inputs, outputs=outputs, widgets=widgets,
                        title=raw.get("title") or sub.get("name") or type_name, class_type=None, virtual=True,
                        subgraph=subgraph)
        if type_name in VIRTUAL_TYPES:
            inputs = [(s["name"], str(s.get("type", "*")), links_by_name.get(s["name"])) for s in saved_inputs]
            outputs = [str(o.get("type", "*")) for o in raw.get("outputs") or [] if isinstance(o, Mapping)]
            return _Dto(**common, inputs=inputs, outputs=outputs, widgets=[], title=raw.get("title") or type_name,
                        class_type=None, virtual=True)
        node_type = self.node_type(type_name)
        if node_type is None:
            self.problems.append(Problem(f"{place}.type", f"unknown node type {type_name!r}: not in the node "
                                                          "definitions (a custom-node pack not installed?)"))
            return None
        # the frontend rebuilds inputs in definition order and keeps extra saved ones (litegraphService.ts:304-331)
        defined = {name for name, _, _ in node_type.inputs}
        inputs = [(name, kind, links_by_name.get(name)) for name, kind, _ in node_type.inputs]
        # ... and Comfy.WidgetInputs' onGraphConfigured (widgetInputs.ts:524-541) removes an extra input that
        # names a widget the node does not have, with its link
        widget_names = {w.name for w in node_type.widgets}
        inputs += [(s["name"], str(s.get("type", "*")), links_by_name.get(s["name"]))
                   for s in saved_inputs if s["name"] not in defined and not _names_missing_widget(s, widget_names)]
        widgets = [_Widget(w.name, w.value, w.in_prompt, w.dynamic_prompts, w.fixed) for w in node_type.widgets]
        self.apply_widgets_values(widgets, raw, place, node_type)
        return _Dto(**common, inputs=inputs, outputs=node_type.outputs, widgets=widgets,
                    title=raw.get("title") or node_type.title, class_type=type_name, virtual=False)

    def apply_widgets_values(self, widgets: list[_Widget], raw: dict, place: str, node_type: _NodeType | None) -> None:
        """LGraphNode.configure (LGraphNode.ts:837-847): values go to widgets by position; missing ones keep defaults."""
        values = raw.get("widgets_values")
        if values is None or isinstance(values, Mapping):
            if values:
                log.warning("%s.widgets_values is an object; the frontend ignores it, so defaults are used", place)
            return
        if not isinstance(values, list):
            raise WorkflowFormatError("malformed workflow", [Problem(f"{place}.widgets_values", "must be a list")])
        if node_type is not None:
            values = _migrate_widgets_values(node_type, values)
        for widget, value in zip(widgets, values):
            if not widget.fixed:
                widget.value = value

    def promoted_widgets(self, subgraph: _Graph, raw: dict, place: str) -> list[_Widget]:
        definition = subgraph.definition or {}
        widgets: list[_Widget] = []
        for slot_index, sub_input in enumerate(definition.get("inputs") or []):
            for link_id in sub_input.get("linkIds") or []:
                link = subgraph.links.get(str(link_id))
                target = subgraph.nodes.get(link.target_id) if link else None
                if target is None:
                    continue
                node_type = self.node_type(target["type"])
                if node_type is None:
                    continue
                # getWidgetFromSlot(resolved.input): the slot is the link's target_slot in the inputs as
                # ComfyNode.configure rebuilt them (definition order, extra saved ones after), which need not
                # be the saved order: the promoted widget copies whatever widget sits at that slot
                rebuilt = self.rebuilt_inputs(target, node_type)
                if not 0 <= link.target_slot < len(rebuilt) or not rebuilt[link.target_slot][1]:
                    continue
                name = rebuilt[link.target_slot][0]
                # createCopyForNode: the promoted widget starts with the inner widget's value
                inner = [_Widget(w.name, w.value) for w in node_type.widgets]
                self.apply_widgets_values(inner, target, subgraph.places[link.target_id], node_type)
                value = next((w.value for w in inner if w.name == name), _UNSET)
                widgets.append(_Widget(str(sub_input.get("name")), value))
                break
        self.apply_widgets_values(widgets, raw, place, None)
        return widgets

    @staticmethod
    def rebuilt_inputs(target: dict, node_type: _NodeType) -> list[tuple[str, bool]]:
        """(name, has a widget) of a node's inputs as ComfyNode.configure rebuilds them: the definition's order,
        then extra saved inputs (litegraphService.ts:304-331), before onGraphConfigured removes any."""
        saved = [s["name"] for s in target.get("inputs") or [] if isinstance(s, Mapping) and "name" in s]
        defined = {n for n, _, _ in node_type.inputs}
        return [(n, w) for n, _, w in node_type.inputs] + [(n, False) for n in saved if n not in defined]

    @staticmethod
    def target_input_name(target: dict, link: _Link) -> str | None:
        """The input a link ends at: by link id (what fixLinkInputSlots restores), else by slot index."""
        saved = target.get("inputs") or []
        for slot in saved:
            if isinstance(slot, Mapping) and slot.get("link") is not None and str(slot.get("link")) == link.id:
                return slot.get("name")
        if 0 <= link.target_slot < len(saved) and isinstance(saved[link.target_slot], Mapping):
            return saved[link.target_slot].get("name")
        return None

    # PrimitiveNode.applyToGraph (extensions/core/widgetInputs.ts:39-80)
    def apply_primitives(self) -> None:
        for dto in self.dtos.values():
            if dto.raw["type"] != "PrimitiveNode":
                continue
            values = dto.raw.get("widgets_values")
            if not isinstance(values, list) or not values:
                continue  # no widget yet: never connected, nothing to apply
            outputs = dto.raw.get("outputs") or []
            link_ids = (outputs[0].get("links") if outputs and isinstance(outputs[0], Mapping) else None) or []
            for link_id in link_ids:
                link = dto.graph.links.get(str(link_id))
                target = self.dtos.get(":".join(dto.path + (link.target_id,))) if link else None
                if target is None:
                    continue
                name = self.target_input_name(target.raw, link)
                for widget in target.widgets:
                    if widget.name == name:
                        widget.value = values[0]
                        break

    # ExecutableNodeDTO.resolveInput / resolveOutput (subgraph/ExecutableNodeDTO.ts:142-365)
    def resolve_input(self, dto: _Dto, slot: int, visited: set, kind: str | None = None) -> tuple | None:
        key = f"{dto.subgraph_node.id if dto.subgraph_node else None}:{dto.id}[I]{slot}"
        if key in visited:
            raise WorkflowFormatError("malformed workflow", [Problem(dto.place, f"circular link through input {slot}")])
        visited.add(key)
        if slot >= len(dto.inputs):
            return None
        name, input_type, link_id = dto.inputs[slot]
        if link_id is None:
            return None
        link = dto.graph.links.get(link_id)
        if link is None:  # the frontend throws InvalidLinkError here (ExecutableNodeDTO.ts:170-174)
            raise WorkflowFormatError("malformed workflow", [Problem(
                f"{dto.place}.inputs[{name}].link", f"link {link_id} is not in {dto.graph.where}links")])
        instance = dto.subgraph_node
        if instance is not None and link.origin_id == str(SUBGRAPH_INPUT_ID):
            # the link comes in through the subgraph's input: continue outside (ExecutableNodeDTO.ts:179-217)
            if link.origin_slot >= len(instance.inputs):
                return None
            outer_name, _, outer_link = instance.inputs[link.origin_slot]
            if outer_link is None:
                widget = next((w for w in instance.widgets if w.name == outer_name), None)
                return None if widget is None else ("widget", widget.value)
            if outer_link not in instance.graph.links:
                raise WorkflowFormatError("malformed workflow", [Problem(
                    f"{instance.place}.inputs[{outer_name}].link", f"link {outer_link} is not in the graph")])
            return self.resolve_input(instance, link.origin_slot, visited)
        origin = dto.graph.nodes.get(link.origin_id)
        origin_dto = self.dtos.get(":".join(dto.path + (link.origin_id,))) if origin is not None else None
        if origin_dto is None:
            # utils/linkFixer.ts:309-324 (run on load): a link from a node that no longer exists is removed
            log.warning("%s: input %r links from node %s, which is not in the workflow; dropped", dto.place, name,
                        link.origin_id)
            return None
        return self.resolve_output(origin_dto, link.origin_slot, kind or input_type, visited)

    def resolve_output(self, dto: _Dto, slot: int, kind: str, visited: set) -> tuple | None:
        key = f"{dto.subgraph_node.id if dto.subgraph_node else None}:{dto.id}[O]{slot}"
        if key in visited:
            raise WorkflowFormatError("malformed workflow", [Problem(dto.place, f"circular link through output {slot}")])
        visited.add(key)
        if dto.mode == MODE_BYPASS:
            index = _bypass_slot_index(dto, slot, kind)
            return None if index == -1 else self.resolve_input(dto, index, visited)
        if dto.subgraph is not None:
            return self.resolve_subgraph_output(dto, slot, kind, visited)
        if dto.virtual:
            # Reroute and the like pass input n through to output n (ExecutableNodeDTO.ts:290-319)
            return self.resolve_input(dto, slot, visited, kind) if slot < len(dto.inputs) else None
        return ("link", dto.id, slot)

    def resolve_subgraph_output(self, dto: _Dto, slot: int, kind: str, visited: set) -> tuple | None:
        subgraph = dto.subgraph
        outputs = (subgraph.definition or {}).get("outputs") or []
        if slot >= len(outputs):
            raise WorkflowFormatError("malformed workflow", [Problem(dto.place, f"has no output {slot}")])
        link = None
        for link_id in outputs[slot].get("linkIds") or []:  # SubgraphNode.resolveSubgraphOutputLink: the first link
            link = subgraph.links.get(str(link_id))
            if link:
                break
        if link is None:
            return None
        inner = self.dtos.get(":".join(dto.path + (dto.node_id, link.origin_id)))
        if inner is None:
            return None
        return self.resolve_output(inner, link.origin_slot, kind, visited)

    def serialize_value(self, widget: _Widget) -> Any:
        if widget.dynamic_prompts and isinstance(widget.value, str):
            return process_dynamic_prompt(widget.value, self.rng)
        return widget.value

    def convert(self) -> dict:
        self.add_graph(self.root, (), None, ())
        if self.problems:
            raise WorkflowFormatError(f"workflow: {len(self.problems)} problem(s)", self.problems)
        self.apply_primitives()
        output: dict[str, dict] = {}
        for dto in self.dtos.values():  # executionUtil.ts:75-146
            if dto.virtual or dto.mode in (MODE_NEVER, MODE_BYPASS):
                continue
            inputs: dict[str, Any] = {}
            for widget in dto.widgets:
                if not widget.name or not widget.in_prompt:
                    continue
                _put(inputs, widget.name, self.serialize_value(widget))
            for i, (name, _, _) in enumerate(dto.inputs):
                resolved = self.resolve_input(dto, i, set())
                if resolved is None:
                    continue
                if resolved[0] == "widget":
                    _put(inputs, name, resolved[1])
                else:
                    inputs[name] = [resolved[1], int(resolved[2])]
            output[dto.id] = {"inputs": inputs, "class_type": dto.class_type, "_meta": {"title": dto.title}}
        # executionUtil.ts:148-155: drop inputs linked to nodes that were not emitted (muted, bypassed without a match)
        for node in output.values():
            for name, value in list(node["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and value[0] not in output:
                    del node["inputs"][name]
        return output


def _put(inputs: dict, name: str, value: Any) -> None:
    """An input value as the frontend sends it: ``undefined`` left out, arrays boxed so they don't read as links."""
    if value is _UNSET:
        inputs.pop(name, None)
    else:
        inputs[name] = {"__value__": value} if isinstance(value, list) else value


def _valid_connection(a: str, b: str) -> bool:
    """``LiteGraph.isValidConnection`` (LiteGraphGlobal.ts:682-714)."""
    if a in ("", "*") or b in ("", "*") or a == b:
        return True
    a, b = a.lower(), b.lower()
    if "," not in a and "," not in b:
        return a == b
    return any(_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


def _bypass_slot_index(dto: _Dto, slot: int, kind: str) -> int:
    """``#getBypassSlotIndex`` (ExecutableNodeDTO.ts:336-365): which input a bypassed node passes to output ``slot``."""
    inputs = dto.inputs
    if kind in ("*", ""):
        return slot if len(inputs) > slot else 0
    output_type = dto.outputs[slot] if slot < len(dto.outputs) else "*"
    if slot < len(inputs) and _valid_connection(inputs[slot][1], output_type) and _valid_connection(inputs[slot][1], kind):
        return slot
    for i, (_, input_type, _) in enumerate(inputs):
        if input_type == kind:
            return i
    for i, (_, input_type, _) in enumerate(inputs):
        if _valid_connection(input_type, output_type) and _valid_connection(input_type, kind):
            return i
    return -1


_COMMENTS = re.compile(r"/\*[\s\S]*?\*/|//.*")
_ESCAPED = re.compile(r"\\([{}|])")


def process_dynamic_prompt(text: str, rng: random.Random | None = None) -> str:
    """``processDynamicPrompt`` (utils/formatUtil.ts:125-185): strip C comments, pick one of each ``{a|b|c}``."""
    rng = rng or random.Random()
    text = _COMMENTS.sub("", text)
    pos = 0

    def escape() -> str:
        nonlocal pos
        nxt = text[pos] if pos < len(text) else "undefined"  # JS: '\\' + input[i++] past the end
        pos += 1
        return "\\" + nxt

    def choice_block() -> str:
        nonlocal pos
        options, choice, depth = [], "", 0
        while pos < len(text):
            char = text[pos]
            pos += 1
            if char == "\\":
                choice += escape()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        return process_dynamic_prompt(options[int(rng.random() * len(options))], rng)

    result = ""
    while pos < len(text):
        char = text[pos]
        pos += 1
        if char == "\\":
            result += escape()
        elif char == "{":
            result += choice_block()
        else:
            result += char
    return _ESCAPED.sub(r"\1", result)


def ui_to_api(workflow: dict, object_info: Mapping[str, dict], rng: random.Random | None = None) -> dict:
    """The API-format prompt the official frontend would queue for ``workflow`` (``graphToPrompt``'s ``output``)."""
    if not is_ui_workflow(workflow):
        raise WorkflowFormatError("not a UI-format workflow", [Problem("workflow", "needs 'nodes' and 'links' lists "
                                                                                   "(is it already API format?)")])
    return _Converter(workflow, object_info, rng or random.Random()).convert()
