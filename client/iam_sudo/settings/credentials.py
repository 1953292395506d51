"""Temporary credentials, and the two ways they reach a user: a profile or a command's env."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..core.exceptions import CredentialsFileError
from . import files as _files
from . import inifile
from .config import RESOLVING_VARIABLE, check_profile_name, runs_iam_sudo, source_of_process

# No brackets, no control characters, no line or paragraph separators.


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials. The secret parts never appear in ``repr``."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    @classmethod
    def from_sts(cls, item: Mapping[str, Any]) -> Credentials:
        """Build from the ``Credentials`` of an AssumeRole response or the function's reply.

        Raises TypeError, KeyError or ValueError for an answer not of that shape.
        """
        expiration = item["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        parts = [item[key] for key in ("AccessKeyId", "SecretAccessKey", "SessionToken")]
        if not isinstance(expiration, datetime) or not all(
            isinstance(part, str) and part for part in parts
        ):
            raise TypeError("credentials of an unexpected shape")
        if expiration.tzinfo is None:
            raise ValueError("an expiration without a time zone")
        access_key_id, secret_access_key, session_token = parts
        return cls(access_key_id, secret_access_key, session_token, expiration)

    def to_dict(self) -> dict[str, str]:
        """The credentials in STS's shape, with an ISO 8601 expiration."""
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration.isoformat(),
        }

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """A copy of ``base`` in which these credentials are the only ones an SDK will find.

        See :func:`environment` (here without setting a region).
        """
        return environment(base, self, None)


# Read by SDKs as credentials or beside them (botocore's EnvProvider, the JS SDK's fromEnv:
# AWS_CREDENTIAL_EXPIRATION, AWS_ACCOUNT_ID, AWS_CREDENTIAL_SCOPE), or naming a profile to
# take them from instead: the JS SDK v3's defaultProvider skips fromEnv altogether while
# AWS_PROFILE is set (@aws-sdk/credential-provider-node, defaultProvider.ts), botocore reads
# AWS_DEFAULT_PROFILE. Whatever iam-sudo hands over sets or unsets every one of them.
SDK_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ACCOUNT_ID",
    "AWS_CREDENTIAL_SCOPE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)
# ... and, in a command's environment, iam-sudo's own mark: never handed on either.
CREDENTIAL_VARIABLES = (*SDK_VARIABLES, RESOLVING_VARIABLE)


def with_region(env: dict[str, str], region: str | None) -> dict[str, str]:
    """``env`` with ``region`` as both variables SDKs read (AWS_REGION: the JS SDK and the
    AWS CLI v2; AWS_DEFAULT_REGION: botocore and the AWS CLI v1); unchanged if None."""
    if region:
        env["AWS_REGION"] = region
        env["AWS_DEFAULT_REGION"] = region
    return env


def handover(credentials: Credentials, region: str | None) -> dict[str, str | None]:
    """The environment changes that make ``credentials`` the only ones every SDK finds.

    Name -> value to set, or None to unset: every one of :data:`SDK_VARIABLES` is unset
    but the keys, the token and the expiration (set as the AWS CLI's
    ``configure export-credentials`` sets them), and ``region`` (if any) is set as both
    region variables: a region that came from the unset profile stays. What a printed
    ``--format`` says and what a command's environment is made of.
    """
    changes: dict[str, str | None] = dict.fromkeys(SDK_VARIABLES)
    changes.update(
        AWS_ACCESS_KEY_ID=credentials.access_key_id,
        AWS_SECRET_ACCESS_KEY=credentials.secret_access_key,
        AWS_SESSION_TOKEN=credentials.session_token,
        AWS_CREDENTIAL_EXPIRATION=credentials.expiration.isoformat(),
    )
    if region:
        changes.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)
    return changes


def environment(
    base: Mapping[str, str], credentials: Credentials, region: str | None
) -> dict[str, str]:
    """``base`` with ``credentials`` as the only credentials an SDK finds, and ``region``.

    See :func:`handover`; iam-sudo's own mark (RESOLVING_VARIABLE) is removed too.
    """
    env = {k: v for k, v in base.items() if k not in CREDENTIAL_VARIABLES}
    for name, value in handover(credentials, region).items():
        if value is not None:
            env[name] = value
    return env


def shared_credentials_file(environ: Mapping[str, str] | None = None) -> Path:
    """The shared credentials file that the AWS CLI and SDKs read."""
    from . import config

    return config.credentials_file(environ)


def holds_long_term_keys(options: Mapping[str, str]) -> bool:
    """Whether a profile's keys are (or may be) long-term: only a session's may be replaced.

    Long-term keys are AKIA keys; keys without a session token are treated as such too,
    since nothing else would tell them apart.
    """
    key = options.get("aws_access_key_id", "").strip()
    token = options.get("aws_session_token", options.get("aws_security_token", "")).strip()
    return bool(key) and (key.startswith("AKIA") or not token)


def update_profile(text: str, profile: str, values: Mapping[str, str]) -> str:
    """``text`` of a credentials file with ``values`` set in section ``profile``.

    Everything else, comments, order and other keys of the same section, stays as it was.
    A section with long-term access keys is never overwritten: temporary credentials
    would silently replace the only copy of a user's keys.
    """
    check_profile_name(profile)
    try:
        sections = inifile.read(text)
    except inifile.IniError as error:
        raise CredentialsFileError(
            f"the credentials file cannot be read as AWS tools read it ({error}); "
            "fix it, then try again"
        ) from None
    if holds_long_term_keys(sections.get(profile, {})):
        raise CredentialsFileError(
            f"profile {profile} holds long-term access keys; iam-sudo will not overwrite "
            "them: choose another profile name"
        )
    try:
        return inifile.set_options(text, profile, values)
    except inifile.IniError as error:
        raise CredentialsFileError(
            f"iam-sudo cannot update profile {profile} without changing other lines of the "
            f"credentials file ({error}); nothing was written: choose another profile name"
        ) from None


def _refuse_read_only(target: Path, what: str, variable: str) -> None:
    """Raise :class:`CredentialsFileError` if ``target`` exists without its owner's write bit.

    A user who made the file read-only said it must not change; replacing it by a new 0600
    file (which a rename can do, even as root) would overrule that.
    """
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    if not mode & stat.S_IWUSR:
        raise CredentialsFileError(
            f"{what} {target} is read-only (mode {mode:o}); iam-sudo will not replace it: "
            f"make it writable (chmod u+w) or name another file with {variable}"
        )


def write_profile(credentials: Credentials, profile: str, path: Path | None = None) -> Path:
    """Save ``credentials`` under ``profile`` in the shared credentials file.

    The file is replaced atomically, with mode 0600, under a lock, keeping every other
    section and line. Returns the path written.
    """
    check_profile_name(profile)
    values = {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
        "expiration": credentials.expiration.isoformat(),
    }
    target = shared_credentials_file() if path is None else path

    def update(text: str) -> str:
        updated = update_profile(text, profile, values)  # long-term keys: its own message
        check_keys_destination(profile, _credentials_sections(text, target))
        return updated

    return _update_file("credentials file", "AWS_SHARED_CREDENTIALS_FILE", target, update)


# botocore's chain for a profile (credentials.create_credential_resolver and
# ProfileProviderBuilder.providers): AssumeRoleProvider (role_arn with source_profile or
# credential_source), then web identity, then SSO, all *before* the SharedCredentialProvider
# that reads keys from the credentials file; credential_process and the config file's own
# keys come *after* it. Keys saved in a profile that has one of the first are never used;
# keys saved in one that has one of the second silently replace how it got credentials.
_USED_BEFORE_KEYS = (
    "role_arn",
    "source_profile",
    "credential_source",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "login_session",
)
_REPLACED_BY_KEYS = ("credential_process",)


def _credentials_sections(text: str, path: Path) -> dict[str, dict[str, str]]:
    try:
        return inifile.read(text)
    except inifile.IniError as error:
        raise CredentialsFileError(
            f"the credentials file {path} cannot be read as AWS tools read it ({error}); fix it"
        ) from None


def keys_destination_problem(
    profile: str,
    config_options: Mapping[str, str],
    credentials_options: Mapping[str, str],
    own_sources: Sequence[str],
) -> str | None:
    """Why saving keys in ``profile`` of the credentials file would be wrong, or None.

    ``config_options`` and ``credentials_options`` are the profile's settings in the AWS
    config file and the credentials file; ``own_sources`` the profiles iam-sudo gets its
    own credentials from (the profile in effect, and those of the iam-sudo processes that
    run this one). Refused: a profile that gets credentials another way, whether botocore
    uses that way before the keys (they would be ignored) or after them (the keys would
    silently replace it, e.g. a credential_process), and iam-sudo's own source (the next
    run would take the role's keys for the user's own).
    """
    if profile in own_sources:
        return (
            f"profile {profile} is where iam-sudo gets its own credentials; saving the role's "
            "keys there would replace yours: choose another --profile name (or give "
            "--source-profile PROFILE for iam-sudo's own)"
        )
    for where, options in (
        ("AWS config file", config_options),
        ("credentials file", credentials_options),
    ):
        for key in (*_USED_BEFORE_KEYS, *_REPLACED_BY_KEYS):
            if key in options:
                effect = (
                    "AWS tools would keep using it and ignore the saved keys"
                    if key in _USED_BEFORE_KEYS
                    else "the saved keys would silently replace it for every AWS tool"
                )
                return (
                    f"profile {profile} gets its credentials through {key} in the {where}: "
                    f"{effect}; choose another --profile name"
                )
    # The config file's own keys come after the credentials file's: keys saved there
    # would hide the user's.
    if "aws_access_key_id" in config_options:
        return (
            f"profile {profile} has access keys in the AWS config file: the saved keys would "
            "silently replace them for every AWS tool; choose another --profile name"
        )
    return None


def check_keys_destination(
    profile: str, credentials_sections: Mapping[str, Mapping[str, str]] | None = None
) -> None:
    """Raise :class:`CredentialsFileError` if keys must not be saved in ``profile``.

    Reads the AWS config file and (unless its ``credentials_sections`` are given) the
    credentials file; see :func:`keys_destination_problem` for the rules.
    """
    from . import config

    if credentials_sections is None:
        path = config.credentials_file()
        try:
            text = _files.read_text(path)
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError):
            text = ""  # reported, with its reason, when the file is written
        credentials_sections = _credentials_sections(text, path)
    own = [config.profile_in_effect(), *config.resolving_profiles()]
    problem = keys_destination_problem(
        profile,
        config.read_config().profile(profile),
        credentials_sections.get(profile, {}),
        own,
    )
    if problem:
        raise CredentialsFileError(problem)


def _update_file(what: str, variable: str, path: Path, update: Callable[[str], str]) -> Path:
    """Replace ``path``'s text with ``update(text)``: locked, atomically, 0600; the path.

    ``what`` names the file and ``variable`` the setting that chose it, in messages. Any
    failure to read or write it is :class:`CredentialsFileError`.
    """
    target = path
    try:
        target = _files.resolve(path)
        with _files.locked(target):
            _refuse_read_only(target, f"the {what}", variable)
            _files.write_atomic(target, update(_files.read_text(target)))
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CredentialsFileError(
            f"cannot write {what} {target}: {reason}; check its path and permissions"
        ) from None
    return target


def aws_config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The AWS config file that the AWS CLI and SDKs read (profiles, credential_process)."""
    from . import config

    return config.config_file(environ)


# Keys by which a profile already gets credentials some other way (botocore's profile
# providers: assume role, web identity, SSO, config-file keys; `login_session`: `aws login`).
_OTHER_SOURCES = (
    "role_arn",
    "source_profile",
    "credential_source",
    "web_identity_token_file",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "sso_start_url",
    "sso_session",
    "sso_account_id",
    "sso_role_name",
    "login_session",
)
# Keys of a credentials-file section that botocore's SharedCredentialProvider uses before
# any credential_process of the same profile.
_SHADOWING_KEYS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_security_token",
)


def process_line(
    self_command: list[str], profile: str, source_profile: str | None, arguments: Sequence[str]
) -> str:
    """The credential_process line making ``profile`` run iam-sudo ``arguments``.

    iam-sudo's own credentials come from ``source_profile`` (default: the profile in effect
    now), recorded in the line: the SDK that runs it has ``profile`` in effect, and
    iam-sudo asking ``profile`` for its own credentials would run itself without end.
    Raises :class:`CredentialsFileError` if the source is ``profile`` itself.
    """
    from . import config

    source = source_profile if source_profile is not None else config.profile_in_effect()
    check_profile_name(source)
    if source == profile:
        raise CredentialsFileError(
            f"iam-sudo cannot get its own credentials from profile {profile}, the profile it "
            "configures: give --source-profile PROFILE, a profile with your own credentials"
        )
    # Quoted for the platform's own splitting (single quotes mean nothing on Windows).
    return config.join_command_line(
        [*self_command, "--source-profile", source, *arguments, "--format", "process"]
    )


def _check_no_cycle(
    profile: str,
    command: str,
    headers: Mapping[str, str],
    sections: Mapping[str, Mapping[str, str]],
) -> None:
    """Refuse a ``command`` for ``profile`` whose own credentials would lead back to it.

    Followed statically through the config file, as the SDKs would at run time: a
    profile's ``source_profile`` (botocore's AssumeRoleProvider), and the
    ``--source-profile`` of a profile whose credential_process runs iam-sudo. Raises
    :class:`CredentialsFileError` naming the chain.
    """
    chain = [profile]
    current = source_of_process(command)
    while current is not None and current not in chain[1:]:
        chain.append(current)
        if current == profile:
            raise CredentialsFileError(
                f"profile {profile} would get iam-sudo's own credentials through "
                f"{' -> '.join(chain)}: a cycle, which no SDK can resolve; give "
                "--source-profile a profile with your own credentials"
            )
        options = sections.get(headers.get(current, ""), {})
        following = options.get("source_profile")
        if following is None and "credential_process" in options:
            following = source_of_process(options["credential_process"])
        current = following


def _check_not_shadowed(profile: str) -> None:
    """Refuse a profile whose credentials-file section has keys: they win over ours."""
    from . import config

    path = config.credentials_file()
    try:
        sections = inifile.read(_files.read_text(path))
    except inifile.IniError as error:
        raise CredentialsFileError(
            f"the credentials file {path} cannot be read as AWS tools read it ({error}); fix it"
        ) from None
    keys = [key for key in _SHADOWING_KEYS if key in sections.get(profile, {})]
    if keys:
        raise CredentialsFileError(
            f"profile {profile} has keys in {path} that AWS tools use before any "
            f"credential_process: remove {', '.join(keys)} from its [{profile}] section "
            "(or the whole section), then run configure again"
        )


def write_process_profile(
    profile: str, command: str, path: Path | None = None, region: str | None = None
) -> Path:
    """Set ``credential_process = command`` in ``profile`` of the AWS config file.

    ``region``, if given, becomes the profile's ``region`` when it has none: a profile
    without one leaves SDKs run with it without a region (botocore's NoRegionError).

    Written as the credentials file is (atomically, 0600, locked, every other line kept),
    in the section botocore reads the profile from, however its header is spelt (see
    :func:`iam_sudo.settings.config.profile_of_section`); a new one is ``[profile NAME]``. A profile
    that already gets credentials another way, in either file, is left alone, with a
    message saying what to remove. Raises :class:`CredentialsFileError`.
    """
    from . import config

    config.check_config_profile_name(profile)
    target = aws_config_file() if path is None else path

    def update(text: str) -> str:
        _check_not_shadowed(profile)
        try:
            sections = inifile.read(text)
            section = config.profile_header(sections, profile)
            existing = sections.get(section, {})
            _check_no_cycle(profile, command, config.profile_sections(sections), sections)
            other = [key for key in _OTHER_SOURCES if key in existing]
            process = existing.get("credential_process", "")
            if other or (process and not runs_iam_sudo(process)):
                raise CredentialsFileError(
                    f"profile {profile} already gets credentials another way "
                    f"({(other or ['credential_process'])[0]} in [{section}] of {target}); "
                    "iam-sudo will not change it: choose another profile name"
                )
            values = {"credential_process": command}
            if region and not existing.get("region", "").strip():
                values["region"] = region
            return inifile.set_options(text, section, values)
        except inifile.IniError as error:
            raise CredentialsFileError(
                f"the AWS config file cannot be updated as AWS tools read it ({error}); "
                "nothing was written"
            ) from None

    return _update_file("AWS config file", "AWS_CONFIG_FILE", target, update)


def add_profile_region(profile: str, region: str, path: Path | None = None) -> bool:
    """Give ``profile`` ``region`` in the AWS config file if it has none; whether it did.

    A profile saved by ``--profile`` holds keys only: without a region, botocore stops
    with NoRegionError and the AWS CLI with "You must specify a region", whatever region
    the keys were got in. The region goes where ``aws configure set region`` puts it (the
    config file's ``[profile NAME]``, or the section botocore reads the profile from), and
    only when neither file has one for the profile: botocore prefers the credentials
    file's region, the JS SDK v3 the config file's, so two would disagree. Written as
    every file here (atomically, 0600, locked). Raises :class:`CredentialsFileError`.
    """
    from . import config

    config.check_config_profile_name(profile)
    target = aws_config_file() if path is None else path
    added: list[bool] = []

    def update(text: str) -> str:
        try:
            sections = inifile.read(text)
            try:
                in_credentials = inifile.read(_files.read_text(config.credentials_file()))
            except FileNotFoundError:
                in_credentials = {}
            section = config.profile_header(sections, profile)
            if any(
                where.get(name, {}).get("region", "").strip()
                for where, name in ((sections, section), (in_credentials, profile))
            ):
                return text
            added.append(True)
            return inifile.set_options(text, section, {"region": region})
        except inifile.IniError as error:
            raise CredentialsFileError(
                f"an AWS file cannot be read as AWS tools read it ({error}); the region was "
                "not written"
            ) from None

    _update_file("AWS config file", "AWS_CONFIG_FILE", target, update)
    return bool(added)
