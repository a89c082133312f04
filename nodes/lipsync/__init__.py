"""Lip sync: mouth cues in Rhubarb Lip Sync's language (shapes A-H and X), from the rhubarb binary or the
pack's own aligner, their file formats, viseme export for 3D rigs, and talking-mouth animation."""
