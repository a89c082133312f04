"""Batch rendering on pools of ComfyUI endpoints (jobs, providers, scheduler). Built on translator's compile and client."""
