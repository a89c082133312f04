"""A shot's dialogue in its graph: each line spoken in its character's voice and lip-synced, the lines joined with
the storyboard's gap, the mouth rigs of the characters who speak, and the room the lines keep from the transitions
into and out of the shot and from another speaker's last line (``project.timing``)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .emotion import line_delivery
from .schema_check import FIT_TO_DIALOGUE
from .storyboard_model import Shot, Storyboard
from .talk import talk_family
from .talk_plan import shot_speakers
from .templates import Graph, Link, Upload, instantiate, path_digest

MOUTH_SUBFOLDER = "animstudio/mouths"
LIPSYNC_SUBFOLDER = "animstudio/lipsync"


def cues_prefix(shot: Shot, index: int) -> str:
    """Where line ``index`` of ``shot`` saves its mouth cues and its sound (Save Mouth Cues' filename prefix)."""
    return f"{LIPSYNC_SUBFOLDER}/{shot.id}-{index + 1}-{shot.dialogue[index].character}"


def dialogue_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict) -> Link | None:
    """Each line spoken in its character's voice and lip-synced (cues saved); the lines joined into the shot's dialogue.
    The voice speaks with the line's delivery (its emotion's rate, pitch and energy, worked out here) and the line's
    mouth opens as wide as its emotion says."""
    dialogue: Link | None = None
    for index, line in enumerate(shot.dialogue):
        character = board.characters[line.character]
        voice = character.voice
        delivery = line_delivery(board, line)
        # a line in its own language speaks it: espeak-ng then picks the voice by the language, not the character's
        # voice name (which speaks the character's own)
        name = "" if line.language and voice.engine == "espeak" else voice.name or ""
        spoken = instantiate("dialogue_line", f"{shot.id}:line-{index + 1}", graph, node_shots, shot.id, {
            "text": line.text, "engine": voice.engine, "voice": name, "language": board.line_language(line),
            "rate": delivery.rate, "pitch": delivery.pitch, "emotion": line.emotion, "energy": delivery.energy,
            "emotion_prosody": False, "mouth_openness": delivery.mouth_openness, "fps": board.project.fps,
            "cues_prefix": cues_prefix(shot, index),
            "speaker": character.display_name,
        })["dialogue"]
        if dialogue is None:
            dialogue = spoken
        else:
            dialogue = instantiate("join_dialogue", f"{shot.id}:dialogue-{index + 1}", graph, node_shots, shot.id,
                                   {"gap": board.project.timing.line_gap}, {"first": dialogue, "second": spoken}
                                   )["dialogue"]
    return dialogue


def mouth_rig_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict,
                     uploads: list[Upload], picture: Link) -> Link | None:
    """A mouth rig for every character the shot places a mouth box for, with that character's mouth set; then one
    for every other speaker, found on the shot's ``picture`` (keyframe or moving frames) by face landmarks:
    face number = the speaker's place among the shot's characters, left to right."""
    rigs: Link | None = None
    placed = [(cid, box) for cid, box in shot.mouths.items()]
    placed += [(cid, None) for cid in shot_speakers(shot) if cid not in shot.mouths]
    for cid, box in placed:
        character = board.characters[cid]
        folder = ""
        if character.mouth_files:
            files = mouth_set_uploads(character.mouth_files)
            uploads.extend(files)
            folder = files[0].subfolder
        where = ({"x": box.x, "y": box.y, "width": box.width, "height": box.height, "locate": None,
                  "face_index": None} if box is not None else
                 {"x": 0, "y": 0, "width": 64, "height": 64, "locate": "auto",
                  "face_index": shot.characters.index(cid) if cid in shot.characters else 0})
        rigs = instantiate("mouth_rig", f"{shot.id}:mouth-{cid}", graph, node_shots, shot.id, {
            "speaker": character.display_name, **where, "mouth_folder": folder},
            {"previous": rigs, "frames": picture if box is None else None})["mouth_rigs"]
    return rigs


def mouth_set_uploads(files: tuple[Path, ...]) -> list[Upload]:
    """A mouth set's shape images (checked by the storyboard loader), uploaded together under a subfolder
    named by their content."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{path_digest(path)}".encode())
    subfolder = f"{MOUTH_SUBFOLDER}/{digest.hexdigest()[:16]}"
    return [Upload(path, subfolder, path.name) for path in files]


def transition_room(board: Storyboard, shot: Shot, object_info: dict | None = None) -> tuple[float, float]:
    """The seconds of the transitions into and out of a shot, which its lines keep clear of; a shot whose first
    speaker is not the one who spoke last in the shot before waits longer, so that ``timing.speaker_pause`` passes
    between them. A talking model's shot keeps its lines from its first frame: the model's frames were made with
    the sound starting there."""
    following = board.next_shot(shot)
    lead = board.shot(shot.id).transition.seconds  # the board's own: a per-shot graph's shot starts with a cut
    return lead + speaker_wait(board, shot, object_info), following.transition.seconds if following is not None else 0.0


def speaker_wait(board: Storyboard, shot: Shot, object_info: dict | None = None) -> float:
    """Seconds a shot's first line waits beyond its incoming transition for another speaker's pause: the silence
    the shot before surely ends with (its tail when fitted to its dialogue, plus the transition its lines kept
    clear of, which a talking model's shot does not) is topped up to ``timing.speaker_pause``."""
    previous = board.previous_shot(shot)
    if previous is None or not previous.dialogue or not shot.dialogue:
        return 0.0
    if previous.dialogue[-1].character == shot.dialogue[0].character:
        return 0.0
    talking = talk_family(board, previous, object_info) is not None
    silence = ((board.project.timing.tail if previous.duration == FIT_TO_DIALOGUE else 0.0)
               + (0.0 if talking else board.shot(shot.id).transition.seconds))
    return round(max(0.0, board.project.timing.speaker_pause - silence), 6)
