"""The pack's node families. Each family lives in its own subpackage: plain stage functions plus one
small module of ComfyUI node classes; this module only gathers their mappings, on first use (PEP 562), so
that stage code (``animstudio.nodes.audio.clip`` for the CLI's ``lipsync``) does not load every family."""

_FAMILIES = ("film.film_nodes", "film.dialogue_nodes", "audio.audio_nodes", "lipsync.lipsync_nodes",
             "film.interpolation_nodes", "picture.picture_nodes", "picture.ipadapter_nodes",
             "picture.consistency_nodes", "llm.llm_nodes", "video.video_nodes")


def _mappings() -> tuple[dict, dict]:
    import importlib

    families = [importlib.import_module(f".{name}", __name__) for name in _FAMILIES]
    classes = {name: cls for family in families for name, cls in family.NODE_CLASS_MAPPINGS.items()}
    titles = {name: title for family in families for name, title in family.NODE_DISPLAY_NAME_MAPPINGS.items()}
    return classes, titles


def __getattr__(name):
    # imported as a top-level ``nodes`` (a checkout on sys.path, where ComfyUI's own ``nodes`` is looked for) it is
    # not the pack: it has no mappings, as the pack's modules cannot load outside it
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS") and "." in __name__:
        classes, titles = _mappings()
        globals().update(NODE_CLASS_MAPPINGS=classes, NODE_DISPLAY_NAME_MAPPINGS=titles)
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
