"""The pack's node families. Each family lives in its own subpackage: plain stage functions plus one
small module of ComfyUI node classes; this module only gathers their mappings."""

from .audio import audio_nodes
from .film import dialogue_nodes, film_nodes, interpolation_nodes
from .lipsync import lipsync_nodes
from .llm import llm_nodes
from .picture import consistency_nodes, ipadapter_nodes, picture_nodes
from .video import video_nodes

_FAMILIES = (film_nodes, dialogue_nodes, audio_nodes, lipsync_nodes, interpolation_nodes,
             picture_nodes, ipadapter_nodes, consistency_nodes, llm_nodes, video_nodes)

NODE_CLASS_MAPPINGS = {name: cls for family in _FAMILIES for name, cls in family.NODE_CLASS_MAPPINGS.items()}
NODE_DISPLAY_NAME_MAPPINGS = {name: title for family in _FAMILIES
                              for name, title in family.NODE_DISPLAY_NAME_MAPPINGS.items()}
