"""Storyboard → ComfyUI API graphs, their validation, and the ways to run them.

Nothing here imports torch, ComfyUI or the pack's node modules at import time: compiling and
submitting work on a machine with neither.
"""
