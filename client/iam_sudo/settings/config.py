"""Where iam-sudo's settings are read: the AWS config files, profiles, regions, IAM_SUDO_*.

Every rule here is the AWS CLI's and botocore's, so that iam-sudo finds the same profile,
region and files as the tools it serves:

* the profile in effect: ``AWS_DEFAULT_PROFILE``, then ``AWS_PROFILE`` (botocore's
  ``profile`` setting), else ``default``;
* the files: ``AWS_CONFIG_FILE`` (``~/.aws/config``) and ``AWS_SHARED_CREDENTIALS_FILE``
  (``~/.aws/credentials``);
* a profile's section in the config file: ``[default]``, or any header that botocore's
  ``configloader.build_profile_map`` maps to the name: ``shlex.split(header)`` gives two
  words, the first starting with ``profile`` (``[profile task]``, ``[profile "a b"]``,
  ``[profile   task]``); the last such section in the file is the one read;
* the region: ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile's ``region``
  (AWS CLI User Guide, "Environment variables to configure the AWS CLI": AWS_REGION
  overrides AWS_DEFAULT_REGION and the profile's region).

Pure but for reading the files: nothing here imports an AWS SDK.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.exceptions import ConfigurationError, CredentialsFileError
from ..core.text import bounded
from . import inifile

DEFAULT_PROFILE = "default"

# Set by iam-sudo in its own environment while it gets its own credentials, and so in the
# environment of any credential_process an SDK runs for it: the source profiles being
# resolved, innermost last. An iam-sudo that finds its own source profile there is being
# run to produce the credentials it needs itself.
RESOLVING_VARIABLE = "IAM_SUDO_RESOLVING_PROFILES"
# No chain of iam-sudo profiles is legitimately deeper than this.
MAX_RESOLVING_DEPTH = 8

# Profile names that both botocore and the AWS SDK for JavaScript v3 read back from a
# `[profile NAME]` header (the JS loader's prefixKeyRegex, @smithy/shared-ini-file-loader;
# botocore's shlex split leaves such names whole).
_PROFILE_NAME = re.compile(r"[^\[\]\x00-\x1f\x7f\x85\u2028\u2029]+")
_PORTABLE_PROFILE_NAME = re.compile(r"[\w\-@+.%:/]+", re.ASCII)


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The AWS config file the AWS CLI and SDKs read (``AWS_CONFIG_FILE``)."""
    environ = os.environ if environ is None else environ
    configured = environ.get("AWS_CONFIG_FILE")
    return Path(configured).expanduser() if configured else Path.home() / ".aws" / "config"


def credentials_file(environ: Mapping[str, str] | None = None) -> Path:
    """The shared credentials file the AWS CLI and SDKs read (``AWS_SHARED_CREDENTIALS_FILE``)."""
    environ = os.environ if environ is None else environ
    configured = environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return Path(configured).expanduser() if configured else Path.home() / ".aws" / "credentials"


def profile_in_effect(environ: Mapping[str, str] | None = None) -> str:
    """The profile botocore uses: ``AWS_DEFAULT_PROFILE``, ``AWS_PROFILE``, else ``default``.

    As botocore's chain of environment variables: the first one set wins, even if empty
    (and an empty name means ``default``).
    """
    environ = os.environ if environ is None else environ
    for variable in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"):
        if variable in environ:
            return environ[variable] or DEFAULT_PROFILE
    return DEFAULT_PROFILE


def profile_of_section(header: str) -> str | None:
    """The profile name botocore reads from a config-file section header, or None.

    botocore's ``configloader._parse_section``: ``default`` is itself; a header starting
    with ``profile`` is split with ``shlex`` and names a profile only as exactly two words.
    """
    if header == DEFAULT_PROFILE:
        return DEFAULT_PROFILE
    return named_section(header, "profile")


def named_section(header: str, kind: str) -> str | None:
    """The name in a ``[KIND NAME]`` header as botocore splits it (profile, services, ...)."""
    if not header.startswith(kind):
        return None
    try:
        parts = shlex.split(header)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None


def profile_sections(sections: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Profile name -> the header of the section botocore reads it from (the last one)."""
    found: dict[str, str] = {}
    for header in sections:
        name = profile_of_section(header)
        if name is not None:
            found[name] = header
    return found


def profile_header(sections: Mapping[str, Mapping[str, str]], profile: str) -> str:
    """The config-file header to write ``profile``'s settings under: the section botocore
    reads it from (however spelt), else a new ``[profile NAME]`` (``[default]``)."""
    found = profile_sections(sections).get(profile)
    if found is not None:
        return found
    return profile if profile == DEFAULT_PROFILE else f"profile {profile}"


def check_config_profile_name(profile: str) -> None:
    """Raise :class:`CredentialsFileError` unless every SDK reads ``[profile NAME]`` back.

    botocore splits the header with shlex (a space or a quote changes the name); the AWS
    SDK for JavaScript v3 accepts only letters, digits and ``_-@+.%:/``.
    """
    if not _PORTABLE_PROFILE_NAME.fullmatch(profile):
        raise CredentialsFileError(
            f"invalid profile name {profile[:80]!r} for the AWS config file: AWS SDKs read "
            "other characters differently; use letters, digits and _ - @ + . % : /"
        )


@dataclass(frozen=True)
class AwsConfig:
    """The parsed AWS config file: its sections as configparser reads them, and its path."""

    path: Path
    sections: dict[str, dict[str, str]]

    def header(self, profile: str) -> str | None:
        """The section header botocore reads ``profile`` from, or None if there is none."""
        return profile_sections(self.sections).get(profile)

    def profile(self, profile: str) -> dict[str, str]:
        """The options of ``profile`` (empty if it has no section)."""
        header = self.header(profile)
        return dict(self.sections[header]) if header is not None else {}

    def section(self, header: str) -> dict[str, str]:
        return dict(self.sections.get(header, {}))


def read_config(environ: Mapping[str, str] | None = None) -> AwsConfig:
    """The AWS config file as botocore reads it; a missing file has no sections.

    Raises :class:`ConfigurationError` for a file botocore could not read either.
    """
    from . import files as _files
    from . import inifile

    path = config_file(environ)
    try:
        text = _files.read_text(path)
    except FileNotFoundError:
        return AwsConfig(path, {})
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigurationError(f"cannot read the AWS config file {path}: {reason}") from None
    try:
        return AwsConfig(path, inifile.read(text))
    except inifile.IniError as error:
        raise ConfigurationError(
            f"the AWS config file {path} cannot be read as AWS tools read it ({error}); fix it"
        ) from None


def region(environ: Mapping[str, str] | None = None, profile: str | None = None) -> str | None:
    """The region as the AWS CLI resolves it, or None if none is set anywhere.

    ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then ``region`` of ``profile`` (default:
    the profile in effect) in the credentials file, then in the config file. Raises
    :class:`ConfigurationError` if the region has to be read from a config file that
    cannot be read, or is not a region name (naming where it was found).
    """
    environ = os.environ if environ is None else environ
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = environ.get(variable, "").strip()
        if value:
            check_region_name(value, variable)
            return value
    name = profile if profile is not None else profile_in_effect(environ)
    aws_config = read_config(environ)
    found = [(aws_config.profile(name).get("region", "").strip(), aws_config.path)]
    # botocore (Session.full_config) merges the credentials file's section over the
    # config file's: a region there wins (and is the only one of a hand-made profile).
    path = credentials_file(environ)
    try:
        from . import files

        in_credentials = inifile.read(files.read_text(path)).get(name, {})
    except (OSError, UnicodeDecodeError, inifile.IniError):
        in_credentials = {}
    found.insert(0, (in_credentials.get("region", "").strip(), path))
    for value, where in found:
        if value:
            check_region_name(value, f"region of profile {name} in {where}")
            return value
    return None


# botocore.utils.validate_region_name: a region is used as a host label.
_REGION_NAME = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")


def invalid_region_message(value: str, where: str | None = None) -> str:
    """One line: ``value`` (from ``where``, a variable or a profile) is not a region name."""
    source = where or "the region (AWS_REGION, AWS_DEFAULT_REGION or your profile's region)"
    return (
        f"{source} is {bounded(value)}, not an AWS region name: use one such as us-east-1 "
        "(letters, digits and hyphens)"
    )


def check_region_name(value: str, where: str) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` is a region name botocore accepts."""
    if not _REGION_NAME.fullmatch(value):
        raise ConfigurationError(invalid_region_message(value, where))


# Served from one global endpoint (IAM), or by one when no region is set (STS, as botocore
# did before regional endpoints): a client of these works without a region.
_GLOBAL_SERVICES = {"iam": "us-east-1", "sts": "us-east-1"}


def client_region(service: str, region_name: str | None, profile: str | None = None) -> str:
    """The region for a ``service`` client: ``region_name``, else a global service's home.

    Raises :class:`ConfigurationError` (saying how to set one) for a regional service
    without a region, rather than guessing one: a function invoked in the wrong region is
    another function, or none.
    """
    if region_name:
        return region_name
    if service in _GLOBAL_SERVICES:
        return _GLOBAL_SERVICES[service]
    name = profile if profile is not None else profile_in_effect()
    raise ConfigurationError(
        f"no AWS region for {service}: set AWS_REGION (or AWS_DEFAULT_REGION), or run "
        f"`aws configure set region REGION --profile {name}`"
    )


def mfa_serial(environ: Mapping[str, str] | None = None) -> str | None:
    """``mfa_serial`` of the profile in effect, as the AWS CLI reads it; None if unreadable."""
    try:
        config = read_config(environ)
    except ConfigurationError:
        return None
    return config.profile(profile_in_effect(environ)).get("mfa_serial") or None


def resolving_profiles(environ: Mapping[str, str] | None = None) -> list[str]:
    """The source profiles the iam-sudo processes above this one are resolving."""
    environ = os.environ if environ is None else environ
    text = environ.get(RESOLVING_VARIABLE, "")
    return [part for part in text.split("\n") if part] if text else []


def mark_resolving(environ: dict[str, str] | os._Environ[str], profile: str) -> None:
    """Record in ``environ`` that this iam-sudo gets its own credentials from ``profile``."""
    environ[RESOLVING_VARIABLE] = "\n".join([*resolving_profiles(environ), profile])


def check_not_own_source(environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigurationError` if this iam-sudo runs to make its own credentials.

    That is: an iam-sudo above it in the process tree is getting its credentials from the
    profile this one would get its own from (a profile whose credential_process runs
    iam-sudo with itself as the source), or the chain is implausibly deep.
    """
    environ = os.environ if environ is None else environ
    above = resolving_profiles(environ)
    if not above:
        return
    mine = profile_in_effect(environ)
    if mine in above or len(above) >= MAX_RESOLVING_DEPTH:
        # The profile to reconfigure is the one whose credential_process runs iam-sudo from
        # `mine` (the way back may be a role_arn profile's source_profile, not ours).
        culprits = _profiles_running_iam_sudo_from(mine, environ) or [above[-1]]
        raise ConfigurationError(
            f"iam-sudo is its own credential source: profile {culprits[0]}'s "
            f"credential_process runs iam-sudo, whose own credentials from profile {mine} "
            f"lead back to it; run `iam-sudo configure {culprits[0]} --source-profile "
            "PROFILE ...` naming a profile with your own credentials"
        )


# How botocore splits a credential_process line (botocore.compat.compat_shell_split): shlex
# on POSIX, the Microsoft C runtime's rules on Windows ("Parsing C++ command-line
# arguments": only space and tab separate, only double quotes quote, backslashes are
# literal unless they lead up to a double quote). The JS SDK v3 hands the line to a shell
# (child_process.exec: /bin/sh, or cmd.exe, which keeps double quotes as they are).
def split_command_line(line: str, windows: bool | None = None) -> list[str]:
    """``line`` split into arguments as botocore runs a credential_process on this platform
    (``windows``: default, whether this is Windows). Raises ValueError as shlex does."""
    if not (os.name == "nt" if windows is None else windows):
        return shlex.split(line)
    argv: list[str] = []
    current: list[str] | None = None  # None: between arguments
    quoted, backslashes = False, 0
    for character in line:
        if character == "\\":
            backslashes += 1
            continue
        if character == '"':
            current = current if current is not None else []
            current.append("\\" * (backslashes // 2))
            if backslashes % 2:
                current.append('"')
            else:
                quoted = not quoted
            backslashes = 0
            continue
        if backslashes:
            current = (current if current is not None else []) + ["\\" * backslashes]
            backslashes = 0
        if character in " \t" and not quoted:
            if current is not None:
                argv.append("".join(current))
            current = None
        else:
            current = (current if current is not None else []) + [character]
    if quoted:
        raise ValueError(f"No closing quotation in string: {line[:80]}")
    if backslashes:
        current = (current if current is not None else []) + ["\\" * backslashes]
    if current is not None:
        argv.append("".join(current))
    return argv


def join_command_line(argv: list[str], windows: bool | None = None) -> str:
    """The line :func:`split_command_line` splits back into ``argv``: ``shlex.join`` on
    POSIX, ``subprocess.list2cmdline`` (double quotes) on Windows, where single quotes are
    no quotes at all and a ``C:\\...`` path must stay whole."""
    if not (os.name == "nt" if windows is None else windows):
        return shlex.join(argv)
    import subprocess

    return subprocess.list2cmdline(argv)


def runs_iam_sudo(line: str) -> bool:
    """Whether a credential_process line runs iam-sudo: by its command, as botocore splits it.

    ``iam-sudo ...`` (any directory), or ``PYTHON -m iam_sudo ...``; a line that merely
    mentions iam-sudo in an argument is another tool's.
    """
    try:
        argv = split_command_line(line)
    except ValueError:
        return False
    if not argv:
        return False
    program = re.split(r"[\\/]", argv[0])[-1].lower()  # a Windows path, on any platform
    if program in ("iam-sudo", "iam-sudo.exe"):
        return True
    return program.startswith("python") and argv[1:3] == ["-m", "iam_sudo"]


def source_of_process(line: str) -> str | None:
    """The --source-profile of an iam-sudo credential_process line, or None."""
    if not runs_iam_sudo(line):
        return None
    try:
        argv = split_command_line(line)
    except ValueError:
        return None
    for index, argument in enumerate(argv):
        if argument == "--source-profile" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--source-profile="):
            return argument.split("=", 1)[1]
    return None


def _profiles_running_iam_sudo_from(source: str, environ: Mapping[str, str]) -> list[str]:
    """The profiles whose credential_process runs iam-sudo with ``--source-profile source``."""
    try:
        aws_config = read_config(environ)
    except ConfigurationError:
        return []
    return [
        name
        for name, header in profile_sections(aws_config.sections).items()
        if source_of_process(aws_config.sections[header].get("credential_process", "")) == source
    ]


# A profile's settings that say how to reach AWS, not who to be: what a command served by
# an ECS credentials endpoint keeps (the AWS CLI User Guide's "Supported config file
# settings", and the SDKs and Tools Reference Guide's settings reference). Anything else
# is dropped: unknown keys may be new ways of getting credentials.
ENDPOINT_SETTINGS = frozenset(
    {
        "region",
        "output",
        "endpoint_url",
        "ignore_configured_endpoint_urls",
        "services",
        "retry_mode",
        "max_attempts",
        "ca_bundle",
        "defaults_mode",
        "parameter_validation",
        "sts_regional_endpoints",
        "s3",
        "api_versions",
        "use_dualstack_endpoint",
        "use_fips_endpoint",
        "tcp_keepalive",
        "connect_timeout",
        "read_timeout",
        "request_min_compression_size_bytes",
        "disable_request_compression",
        "request_checksum_calculation",
        "response_checksum_validation",
        "account_id_endpoint_mode",
        "sigv4a_signing_region_set",
        "auth_scheme_preference",
        "sdk_ua_app_id",
        "metadata_service_timeout",
        "metadata_service_num_attempts",
        "cli_binary_format",
        "cli_pager",
        "cli_timestamp_format",
        "cli_follow_urlparam",
        "cli_auto_prompt",
        "cli_history",
    }
)


def _ini_value(value: str) -> str:
    # A nested block (s3 = / addressing_style = path) comes back from configparser with its
    # lines after a newline: written out indented, it reads back the same.
    return value.replace("\n", "\n  ")


def endpoint_settings(environ: Mapping[str, str], region_name: str | None) -> str:
    """An AWS config file holding only the profile in effect's endpoint settings.

    As ``[default]``, with ``region_name`` as its region, and the ``[services NAME]``
    section it refers to. Nothing in it can provide credentials (see ENDPOINT_SETTINGS).
    Raises :class:`ConfigurationError` if the config file cannot be read.
    """
    from . import inifile

    aws_config = read_config(environ)
    profile = aws_config.profile(profile_in_effect(environ))
    kept = {key: value for key, value in profile.items() if key in ENDPOINT_SETTINGS}
    if region_name:
        kept["region"] = region_name
    lines = ["[default]", *(f"{key} = {_ini_value(value)}" for key, value in kept.items())]
    services = kept.get("services")
    if services:
        block = next(
            (
                aws_config.section(header)
                for header in aws_config.sections
                if named_section(header, "services") == services
            ),
            {},
        )
        lines += ["", f"[services {services}]"]
        lines += [f"{key} = {_ini_value(value)}" for key, value in block.items()]
    text = "\n".join(lines) + "\n"
    inifile.read(text)  # what we write reads back, or this is our bug, loudly
    return text


def use_source_profile(environ: dict[str, str] | os._Environ[str], profile: str | None) -> None:
    """Make ``profile`` (if given) the one iam-sudo gets its own credentials from.

    Sets it in ``environ`` as the AWS CLI's ``--profile`` would be (``default`` means no
    profile variable at all: the SDK's default chain), refuses to run as its own
    credential source (:func:`check_not_own_source`), and marks ``environ`` so that an
    iam-sudo run by an SDK below this one can tell.
    """
    if profile is not None:
        check_profile_name(profile)
        if profile != DEFAULT_PROFILE:
            check_profile_exists(profile, environ)
        environ.pop("AWS_DEFAULT_PROFILE", None)
        if profile == DEFAULT_PROFILE:
            environ.pop("AWS_PROFILE", None)
        else:
            environ["AWS_PROFILE"] = profile
    check_not_own_source(environ)
    mark_resolving(environ, profile_in_effect(environ))


def check_profile_exists(profile: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`ConfigurationError` unless ``profile`` is in either AWS file, as
    botocore looks for it (its ProfileNotFound otherwise, later, blaming AWS_PROFILE)."""
    from . import files as _files

    environ = os.environ if environ is None else environ
    aws_config = read_config(environ)
    if aws_config.header(profile) is not None:
        return
    path = credentials_file(environ)
    try:
        if profile in inifile.read(_files.read_text(path)):
            return
    except (OSError, UnicodeDecodeError, inifile.IniError):
        pass  # unreadable: as botocore, no profile there
    raise ConfigurationError(
        f"--source-profile {profile}: there is no such profile in {aws_config.path} or "
        f"{path}; name one of your profiles (`aws configure list-profiles`)"
    )


def own_credentials_failure(
    kind: str, detail: str, environ: Mapping[str, str] | None = None
) -> str:
    """One line saying that iam-sudo's *own* credential source failed, and what to do.

    ``kind``: ``sso`` (the SSO token is missing or expired), ``process`` (the profile's
    credential_process failed), ``process-output`` (it printed something besides its
    JSON), ``expired`` (the credentials have expired), ``invalid`` (AWS does not know the
    keys, or the secret does not match), ``config`` (the profile's settings are invalid).
    ``detail`` is the SDK's or AWS's reason; it is scrubbed of secrets and shortened.
    """
    from ..core.redact import scrub

    environ = os.environ if environ is None else environ
    profile = profile_in_effect(environ)
    in_env = "AWS_ACCESS_KEY_ID" in environ and kind in ("expired", "invalid")
    where = "the AWS_ACCESS_KEY_ID of the environment" if in_env else f"profile {profile}"
    fix = {
        "sso": f"run `aws sso login --profile {profile}`",
        "process": (
            "run the profile's credential_process by hand to see why "
            f"(`aws configure get credential_process --profile {profile}`)"
        ),
        "process-output": (
            "the profile's credential_process must print only its JSON credentials on "
            "stdout: send anything else it prints to stderr"
        ),
        "config": (
            f"fix profile {profile} (and the profiles it names) in "
            f"{config_file(environ)} or {credentials_file(environ)}"
        ),
        "invalid": (
            "AWS does not accept these keys (deactivated, deleted, mistyped, or of another "
            "partition): set working ones"
            + (" in the environment" if in_env else f" for profile {profile}")
        ),
        "expired": (
            "get fresh keys and unset a stale AWS_CREDENTIAL_EXPIRATION"
            if in_env
            else f"refresh them (for SSO: `aws sso login --profile {profile}`)"
        ),
    }[kind]
    reason = " ".join(scrub(detail).split())[:400]
    return f"iam-sudo's own credentials ({where}) failed: {reason}; {fix}"


def check_profile_name(profile: str) -> None:
    """Raise :class:`CredentialsFileError` unless ``profile`` can be a section name as is."""
    if (
        not _PROFILE_NAME.fullmatch(profile)
        or profile != profile.strip()
        or profile == inifile.DEFAULT_SECTION
    ):
        raise CredentialsFileError(
            f"invalid profile name {bounded(profile)}: use a name without brackets, control "
            "characters or surrounding spaces, other than DEFAULT"
        )
