"""Animation Studio: ComfyUI's door into the pack, and nothing else.

ComfyUI imports this folder (under its clone's name) and reads ``NODE_CLASS_MAPPINGS``,
``NODE_DISPLAY_NAME_MAPPINGS`` and ``WEB_DIRECTORY``. They are resolved lazily (PEP 562) so that
``import animstudio.translator`` (the CLI, a cloud worker) does not load the node modules.
"""

WEB_DIRECTORY = "./js"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]


def _register_routes() -> None:
    """Inside ComfyUI (its ``server`` module is loaded and has a running instance) add the pack's routes."""
    import sys

    server = sys.modules.get("server")
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    if instance is not None and hasattr(instance, "routes"):
        from .routes import register

        register(instance)


_register_routes()


def __getattr__(name):
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        from . import nodes

        return getattr(nodes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
