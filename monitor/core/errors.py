"""User-facing errors: raised for bad config or bad input, printed as one line, exit code 2."""


class UserError(Exception):
    """A mistake the user can fix. The message names the file/option, the field and the fix."""


class ConfigError(UserError):
    """One or more config mistakes; str() is one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
