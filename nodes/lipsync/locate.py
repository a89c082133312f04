"""Where a rig's mouth is: the box given, or found by face landmarks on the shot's picture, and followed through
moving frames. Plain functions over numpy pictures; the Mouth Rig node is their shell."""
from __future__ import annotations

import logging

from .mouths import MouthBox, MouthRig

log = logging.getLogger(__name__)

LOCATE = ("box", "auto")
DEFAULT_BOX = MouthBox(0, 0, 64, 64)  # the node's defaults: a box nobody set


def locate_rig(speaker: str, box: MouthBox, mouths, pictures=None, locate: str = "box", face_index: int = 0,
               where: str = "") -> MouthRig:
    """A :class:`MouthRig`: its box given, or found on ``pictures[0]`` (``locate="auto"``), and with several
    pictures its track through them. No face: a warning, and the given box if it was set, else no mouth."""
    if locate not in LOCATE:
        raise ValueError(f"locate must be one of {', '.join(LOCATE)}, not {locate!r}")
    who = f"{speaker or 'the speaker'}" + (f" (mouth rig {where})" if where else "")
    note = ""
    if locate == "auto":
        if pictures is None or not len(pictures):
            raise ValueError(f"{who}: locate 'auto' needs the shot's keyframe or frames linked to 'frames'")
        from .faces import FacesUnavailable, find_mouths

        try:
            found = find_mouths(pictures[0])
        except FacesUnavailable as exc:  # a machine without the extra still renders: the mouth is not drawn
            log.warning("%s: %s; the mouth is not drawn", who, exc)
            return MouthRig(speaker, None if box == DEFAULT_BOX else box, mouths, note=str(exc))
        if face_index < len(found):
            box = found[face_index].box
            log.info("%s: mouth found at %s (face %d of %d, left to right)", who, box, face_index, len(found))
        else:
            note = ("no face found on the keyframe" if not found else
                    f"face {face_index} asked for, {len(found)} found") + " (stylized art or a back view?)"
            if box != DEFAULT_BOX:
                log.warning("%s: %s; using the box given, %s", who, note, box)
                note = ""
            else:
                log.warning("%s: %s; the mouth is not drawn (set its box: in the storyboard's shot 'mouths', or "
                            "click the mouth on the keyframe in the Storyboard sidebar)", who, note)
                return MouthRig(speaker, None, mouths, note=note)
    track = ()
    if pictures is not None and len(pictures) > 1:
        from .mouth_track import track_box

        track = track_box(list(pictures), box, label=who).boxes
    return MouthRig(speaker, box, mouths, track, note)
