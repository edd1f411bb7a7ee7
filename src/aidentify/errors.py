"""One exception family for everything a user can get wrong.

Library code raises these; only :mod:`aidentify.cli` turns them into a single
``error: ...`` line and a non-zero exit. Each message says what went wrong
and, where we can tell, what to do about it.
"""


class AidentifyError(Exception):
    """Base class of every error a user should see as one clear line."""


class ConfigError(AidentifyError):
    """A config file or ``--set`` override is missing, malformed or invalid."""


class DataError(AidentifyError):
    """Input data is missing, unrecognised or inconsistent."""


class ArchiveError(DataError):
    """An archive is corrupt, truncated or tries to write outside its folder."""


class DownloadError(AidentifyError):
    """A download could not be completed."""


class CredentialsError(DownloadError):
    """Kaggle credentials are missing or were rejected."""


class StageInputMissing(DataError):
    """A stage was started before the stage it reads from has produced output."""
