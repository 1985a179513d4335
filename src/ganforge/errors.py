"""Every error ganforge raises on purpose; the CLI prints these in one line and exits 2."""


class GanforgeError(Exception):
    """Base class: the message names the file or option at fault and says what to do."""


class ConfigError(GanforgeError, ValueError):
    """An option or config file value is invalid."""


class DataError(GanforgeError):
    """A dataset is missing, corrupt or unsuitable for the request."""


class RunError(GanforgeError):
    """A run directory or checkpoint is missing, mismatched or corrupt."""


class StorageError(GanforgeError):
    """A file could not be written (disk full, quota, file-size limit); the previous version is intact."""


class TrainingDiverged(GanforgeError):
    """A loss became non-finite; the last good checkpoint is kept."""
