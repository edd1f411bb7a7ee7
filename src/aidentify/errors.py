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


class ExtraMissing(AidentifyError):
    """A command needs a package of an optional extra that is not installed (``pip install 'aidentify[train]'``).

    ``package`` is what the user knows it as (``TensorFlow``, ``Kaggle``), ``extra``
    the extra that brings it. :meth:`for_command` names the command that needs it,
    which only the CLI knows.
    """

    def __init__(self, package: str, extra: str):
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is not installed: pip install 'aidentify[{extra}]'")

    def for_command(self, command: str) -> str:
        """The one line for ``command``: ``train needs TensorFlow: pip install 'aidentify[train]'``."""
        return f"{command} needs {self.package}: pip install 'aidentify[{self.extra}]'"
