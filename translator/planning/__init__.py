"""Planning: a request in plain words (or a whole text) becomes storyboards, through a language model.

It produces storyboards, so it sits on the translator's side; the graph editor's Plan Storyboard and Shot Prompts
nodes (``nodes/llm/llm_nodes.py``) are shells that import it when they run, and the CLI's ``plan`` calls it.
``backends``: the language models (llama.cpp in process, grammar-constrained; an OpenAI-compatible server);
``planner``: the prompt, the schema the answer is held to, and the repair and validation of what comes back;
``stages``: planning in stages a small model can follow, optionally held to a series ``bible`` (the characters and
places every episode shares); ``novel`` (with ``novel_text``): a whole text → chapters → episode storyboards.
"""
