"""Keyframes edited from character sheets (``project.keyframe_model`` ``qwen_edit`` or ``kontext``): each character's
sheet (front, three-quarter and profile views; the user's own, or made once from the description and reference
pictures), and every generated keyframe drawn by the edit model with the sheets of the characters in the shot as
its reference pictures.

Both families share one shape: the model files loaded once per graph, an instruction encoded with the reference
pictures (Qwen2.5-VL reads them; Flux Kontext's text encoders do not), each reference scaled to
``reference_megapixels`` and appended as a ``ReferenceLatent``, then a plain KSampler on a 16-channel latent.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .keyframe_models import QWEN_EDIT_MAX_REFERENCES
from .storyboard_model import Shot, Storyboard
from .templates import FILM_SCOPE, Graph, Link, Upload, content_upload, instantiate

SHEET_SUBFOLDER = "animstudio/sheets"
SHEET_VIEWS = "front view, three-quarter view and profile view side by side"


def sheet_prompt(board: Storyboard, cid: str) -> str:
    """The instruction that turns a character's reference pictures into their sheet."""
    character = board.characters[cid]
    style = f" Style: {board.project.style}." if board.project.style.strip() else ""
    return (f"Character turnaround sheet of {character.display_name}: {character.description}. The same person three "
            f"times, {SHEET_VIEWS}, full body, on a plain light grey background, with the face, hair and clothes of "
            f"the reference pictures.{style}")


def edit_prompt(board: Storyboard, shot: Shot, shot_text: str) -> str:
    """A keyframe's instruction: which reference picture is whose sheet, then the shot."""
    names = [board.characters[cid].display_name for cid in shot.characters]
    if not names:
        return shot_text
    which = ", ".join(f"picture {i + 1} is {name}'s character sheet" for i, name in enumerate(names))
    return (f"{which[0].upper()}{which[1:]}. Draw a new picture: {shot_text}. Keep each character's face, hair and "
            "clothes exactly as on their sheet; show each of them once.")


def sheet_seed(board: Storyboard, cid: str) -> int:
    digest = hashlib.sha256(f"{board.project.seed}:sheet:{cid}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def edit_models(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None) -> dict[str, Link]:
    """The family's model files, loaded once per graph."""
    family = board.project.keyframe_model
    settings = getattr(board.project.keyframe_models, family)
    template = f"{family}_models"
    node = f"{FILM_SCOPE}:{family}"
    if f"{node}:unet" not in graph:
        params = ({"unet": settings.unet, "clip_l": settings.clip_l, "t5xxl": settings.t5xxl, "vae": settings.vae}
                  if family == "kontext" else
                  {"unet": settings.unet, "text_encoder": settings.text_encoder, "vae": settings.vae,
                   "shift": settings.shift})
        instantiate(template, node, graph, node_shots, shot_id, params)
    return {"model": [f"{node}:{'sampling' if family == 'qwen_edit' else 'unet'}", 0], "clip": [f"{node}:clip", 0],
            "vae": [f"{node}:vae", 0]}


def edit_picture(board: Storyboard, scope: str, graph: Graph, node_shots: dict, shot_id: str | None, prompt: str,
                 references: list[Link], seed: int, prefix: str) -> Link:
    """A picture drawn by the project's edit model from ``prompt`` and the ``references`` (pictures), saved under
    ``prefix``; returns the decoded image."""
    project = board.project
    family = project.keyframe_model
    settings = getattr(project.keyframe_models, family)
    models = edit_models(board, graph, node_shots, shot_id)
    if family == "qwen_edit":
        images = {f"image{i + 1}": (references[i] if i < len(references) else None)
                  for i in range(QWEN_EDIT_MAX_REFERENCES)}
        positive = instantiate("qwen_edit_prompt", f"{scope}:positive", graph, node_shots, shot_id,
                               {"prompt": prompt}, {"clip": models["clip"], **images})["conditioning"]
    else:
        positive = instantiate("kontext_prompt", f"{scope}:positive", graph, node_shots, shot_id,
                               {"prompt": prompt}, {"clip": models["clip"]})["conditioning"]
    latents = [instantiate("reference_latent", f"{scope}:ref-{i + 1}", graph, node_shots, shot_id,
                           {"megapixels": settings.reference_megapixels},
                           {"image": image, "vae": models["vae"]})["latent"] for i, image in enumerate(references)]
    for i, latent in enumerate(latents):
        positive = instantiate("reference_condition", f"{scope}:ref-{i + 1}", graph, node_shots, shot_id, {},
                               {"conditioning": positive, "latent": latent})["conditioning"]
    if family == "kontext":
        positive = instantiate("flux_guidance", scope, graph, node_shots, shot_id, {"guidance": settings.guidance},
                               {"conditioning": positive})["conditioning"]
    negative = instantiate("zero_out", f"{scope}:negative", graph, node_shots, shot_id, {},
                           {"conditioning": positive})["conditioning"]
    return instantiate("edit_sample", scope, graph, node_shots, shot_id, {
        "width": project.width, "height": project.height, "seed": seed, "steps": settings.steps,
        "cfg": settings.cfg if family == "qwen_edit" else 1.0, "sampler": settings.sampler,
        "scheduler": settings.scheduler, "prefix": prefix,
    }, {"model": models["model"], "positive": positive, "negative": negative, "vae": models["vae"]})["image"]


def sheet_nodes(board: Storyboard, cid: str, graph: Graph, node_shots: dict, uploads: list[Upload],
                shot_id: str | None = None) -> Link:
    """A character's sheet made from their reference pictures (at most three), saved as
    ``animstudio/sheets/<cid>``; returns the picture."""
    refs = []
    for k, path in enumerate(board.characters[cid].reference_images[:QWEN_EDIT_MAX_REFERENCES]):
        upload = content_upload(path, SHEET_SUBFOLDER)
        uploads.append(upload)
        refs.append(instantiate("reference_image", f"sheet-{cid}:source-{k + 1}", graph, node_shots, shot_id,
                                {"image": upload.name})["image"])
    return edit_picture(board, f"sheet-{cid}", graph, node_shots, shot_id, sheet_prompt(board, cid), refs,
                        sheet_seed(board, cid), f"{SHEET_SUBFOLDER}/{cid}")


def sheet_image(board: Storyboard, cid: str, graph: Graph, node_shots: dict, uploads: list[Upload],
                shot_id: str | None, sheets: dict[str, Path] | None) -> Link:
    """A character's sheet as a keyframe graph reads it: the user's own, the one rendered (``sheets``), made in
    this graph (``sheets`` None: one graph renders the film), or, in a per-shot plan, named as
    ``animstudio/sheets/<cid>.png`` (the sheet graph makes it)."""
    for node in (f"sheet-{cid}:decode", f"sheet-{cid}:sheet:image"):  # made, or loaded, for an earlier shot
        if node in graph:
            return [node, 0]
    own = board.characters[cid].sheet
    path = own or (sheets or {}).get(cid)
    if path is None and sheets is None:
        return sheet_nodes(board, cid, graph, node_shots, uploads)
    if path is not None:
        upload = content_upload(path, SHEET_SUBFOLDER)
        uploads.append(upload)
        name = upload.name
    else:
        name = f"{SHEET_SUBFOLDER}/{cid}.png"
    return instantiate("reference_image", f"sheet-{cid}:sheet", graph, node_shots, shot_id, {"image": name})["image"]
