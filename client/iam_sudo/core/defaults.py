"""Defaults that `iam-sudo --help` shows, apart from the rules that use them.

A module of constants only, so that the CLI's cold paths (``--help``, a credential_process
cache hit) can show them without importing the rules; :mod:`.session` and
:mod:`..steps.remote` use and re-export them.
"""

#: Seconds a session lasts unless asked otherwise: STS AssumeRole's own default
#: (AWS STS API Reference, AssumeRole, DurationSeconds: "Default: 3600 seconds (1 hour)").
DEFAULT_DURATION_SECONDS = 3600
#: The name of the iam-sudo Lambda function that --remote asks.
DEFAULT_FUNCTION_NAME = "iam-sudo"
#: `serve`: how containers reach the credentials server, and the port it listens on.
SETUPS = ("link-local", "sidecar", "host")
DEFAULT_PORT = 9911
