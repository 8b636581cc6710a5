"""Errors a user can cause. The CLI prints their message on one line and exits with status 2;
pages show it with st.error. Anything else is a bug and keeps its traceback."""


class MaskappError(Exception):
    """Base class: the message names what was wrong and what is allowed."""


class ConfigError(MaskappError):
    """A training setting outside its range (epochs, learning rate, split fractions...)."""


class ImageError(MaskappError):
    """An image that cannot be decoded, is empty, or is over a size limit."""


class CheckpointError(MaskappError):
    """A weights file that is missing, corrupt, or made for other classes or another model."""


class DataError(MaskappError):
    """A data folder without class subfolders, with an empty class, or with no readable images."""


class VideoError(MaskappError):
    """A video file or stream that cannot be opened or read."""


class RunFormatError(MaskappError):
    """A run directory with missing or malformed files."""


class DetectorError(MaskappError):
    """An unknown detector name, a face threshold or margin out of range, or a frame a detector cannot
    read."""


class LiveConfigError(MaskappError):
    """A malformed ICE server configuration or an out-of-range live setting."""


class OutputError(MaskappError):
    """A result file or folder that cannot be written."""


class EventStoreError(MaskappError):
    """An events database that cannot be created or written, is corrupt, locked or not a maskapp log;
    or an event-log setting outside what is allowed (e.g. a negative aggregate window)."""


class HookError(MaskappError):
    """A violation hook set up with a URL or settings it cannot use (only http:// and https:// URLs)."""


class AnonymizeError(MaskappError):
    """An anonymisation mode other than the allowed ones (none, blur, fill)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `docker stop`, a service manager, `timeout`) or SIGHUP (the terminal closed),
    raised by the command line where Ctrl-C raises KeyboardInterrupt, so that a stop by any of them keeps
    the same results: the frames done, the annotated video closed, and person_left for everyone still in
    view. Not a MaskappError: no user mistake."""

    def __init__(self, signal_name: str = "SIGTERM"):
        super().__init__(signal_name)
        self.signal_name = signal_name
