"""A ComfyUI-API simulator and the helpers that drive the real batch scheduler on it (issue 20, item 5).

Real ComfyUI instances stay the truth for correctness; the simulator is for measuring the scheduler at pool
sizes this machine cannot hold as real servers."""
