"""The one error lip sync raises for the user: a missing binary or package, empty audio, a failed run."""


class LipSyncError(RuntimeError):
    pass
