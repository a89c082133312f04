"""The ground every room stands on: the error type with its places, folder-escape checks, URL and
credential handling, the one JSON reader, the one input-file check and the one HTTP helper.

Imports nothing of the project, so ``nodes/``, ``translator/``, ``cloud/``, the CLI and the routes all
use it without an arrow running back up (see ``../shared/architecture.md``).
"""
