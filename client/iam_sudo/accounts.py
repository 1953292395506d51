"""Other accounts of an Organization: the spoke roles iam-sudo assumes there (issue 17)."""

from __future__ import annotations

#: The role a spoke account's IAM is read through (``IAM_SUDO_READER_ROLE`` overrides it).
DEFAULT_READER_ROLE = "iam-sudo-reader"
