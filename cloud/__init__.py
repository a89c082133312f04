"""Batch rendering on a pool of ComfyUI endpoints: jobs (a DAG per film), the pool, providers that start and
close instances, the embedded scheduler with its SQLite journal, and the Celery engine for studios that
outgrow one machine. Uses :mod:`animstudio.translator` (compile, client, the render stages); never the nodes."""
