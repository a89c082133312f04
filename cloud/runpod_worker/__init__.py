"""The project's RunPod serverless worker (:mod:`.handler`), run next to a ComfyUI in the same container."""
