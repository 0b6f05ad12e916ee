"""Errors that the CLI turns into a one-line message instead of a traceback."""


class CliError(Exception):
    """A failure the user can act on; ``exit_code`` is what the process returns."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad arguments: exit code 2, like argparse."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)
