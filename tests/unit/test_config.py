"""Settings read as the AWS CLI and botocore read them: profiles, regions, files, recursion."""

from __future__ import annotations

import configparser
import io
from pathlib import Path

import pytest
from botocore.configloader import build_profile_map
from hypothesis import given
from hypothesis import strategies as st

from iam_sudo.core.exceptions import ConfigurationError, CredentialsFileError
from iam_sudo.settings import config, inifile
from iam_sudo.settings.credentials import process_line, runs_iam_sudo


def botocore_profiles(text: str) -> dict[str, dict[str, str]]:
    """The profiles botocore itself finds in a config file's text (its configloader)."""
    parser = configparser.RawConfigParser()
    parser.read_file(io.StringIO(text))
    parsed = {name: dict(parser.items(name)) for name in parser.sections()}
    return dict(build_profile_map(parsed)["profiles"])


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("default", "default"),
        ("profile task", "task"),
        ("profile   task", "task"),
        ('profile "a b"', "a b"),
        ("profile 'task'", "task"),
        ("profile a b", None),  # three words: botocore ignores the section
        ("profiletask", None),
        ('profile "unclosed', None),
        ("preview", None),
        (" profile task", None),
    ],
)
def test_a_section_header_names_the_profile_botocore_reads_from_it(
    header: str, name: str | None
) -> None:
    assert config.profile_of_section(header) == name
    assert set(botocore_profiles(f"[{header}]\nregion = x\n")) == ({name} if name else set())


_HEADER_CHARS = st.sampled_from(list("profile defaultab \"'\\-_.@"))


@given(st.lists(st.text(_HEADER_CHARS, min_size=1, max_size=16), min_size=1, max_size=5))
def test_profiles_map_to_sections_exactly_as_botocore_maps_them(headers: list[str]) -> None:
    text = "".join(
        f"[{h}]\nregion = r{i}\n"
        for i, h in enumerate(dict.fromkeys(h.strip() for h in headers))
        if h.strip() and "]" not in h
    )
    try:
        sections = inifile.read(text)
    except inifile.IniError:
        return
    ours = {name: sections[header] for name, header in config.profile_sections(sections).items()}
    assert ours == botocore_profiles(text)


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config"
    path.write_text(text)
    return {"AWS_CONFIG_FILE": str(path)}


def test_the_region_is_resolved_as_the_aws_cli_does(tmp_path: Path) -> None:
    # AWS CLI User Guide, "Environment variables to configure the AWS CLI": AWS_REGION
    # overrides AWS_DEFAULT_REGION and the profile setting region.
    env = write_config(
        tmp_path, "[default]\nregion = eu-central-1\n[profile dev]\nregion = sa-east-1\n"
    )
    assert config.region(env) == "eu-central-1"
    assert config.region({**env, "AWS_PROFILE": "dev"}) == "sa-east-1"
    assert config.region({**env, "AWS_PROFILE": "dev", "AWS_DEFAULT_REGION": "us-west-2"}) == (
        "us-west-2"
    )
    both = {**env, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}
    assert config.region(both) == "eu-west-1"
    assert config.region(write_config(tmp_path, "")) is None


def test_the_profile_in_effect_is_botocores() -> None:
    # botocore's session variable `profile`: AWS_DEFAULT_PROFILE, then AWS_PROFILE.
    assert config.profile_in_effect({}) == "default"
    assert config.profile_in_effect({"AWS_PROFILE": "a"}) == "a"
    assert config.profile_in_effect({"AWS_PROFILE": "a", "AWS_DEFAULT_PROFILE": "b"}) == "b"


def test_a_regional_service_without_a_region_is_one_line_saying_how_to_set_one() -> None:
    assert config.client_region("sts", None) == "us-east-1"
    assert config.client_region("lambda", "eu-west-1") == "eu-west-1"
    with pytest.raises(ConfigurationError, match="no AWS region for lambda: set AWS_REGION"):
        config.client_region("lambda", None, "dev")


def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    env = write_config(tmp_path, "region = x\n")
    with pytest.raises(ConfigurationError, match="cannot be read as AWS tools read it"):
        config.region(env)
    assert config.mfa_serial(env) is None


def test_mfa_serial_is_the_profile_in_effects(tmp_path: Path) -> None:
    env = write_config(tmp_path, '[profile "dev"]\nmfa_serial = arn:aws:iam::1:mfa/me\n')
    assert config.mfa_serial({**env, "AWS_PROFILE": "dev"}) == "arn:aws:iam::1:mfa/me"
    assert config.mfa_serial(env) is None


def test_endpoint_settings_keep_how_to_reach_aws_and_nothing_that_gives_credentials(
    tmp_path: Path,
) -> None:
    env = write_config(
        tmp_path,
        "[default]\n"
        "credential_process = /bin/creds\n"
        "sso_session = corp\n"
        "role_arn = arn:aws:iam::1:role/r\n"
        "source_profile = base\n"
        "aws_access_key_id = AKIAX\n"
        "aws_secret_access_key = s\n"
        "web_identity_token_file = /t\n"
        "region = eu-west-3\n"
        "endpoint_url = http://localhost:1\n"
        "max_attempts = 7\n"
        "retry_mode = adaptive\n"
        "services = local\n"
        "s3 =\n  addressing_style = path\n"
        "some_future_setting = x\n"
        "[services local]\nsts =\n  endpoint_url = http://localhost:2\n",
    )
    text = config.endpoint_settings(env, "eu-west-1")
    sections = inifile.read(text)
    assert sections["default"] == {
        "region": "eu-west-1",
        "endpoint_url": "http://localhost:1",
        "max_attempts": "7",
        "retry_mode": "adaptive",
        "services": "local",
        "s3": "\naddressing_style = path",
    }
    assert sections["services local"] == {"sts": "\nendpoint_url = http://localhost:2"}


def test_an_iam_sudo_run_as_its_own_credential_source_stops_with_the_fix(
    tmp_path: Path,
) -> None:
    (tmp_path / "config").write_text("[profile task]\n[profile dev]\n")
    env: dict[str, str] = {"AWS_PROFILE": "task", "AWS_CONFIG_FILE": str(tmp_path / "config")}
    config.use_source_profile(env, None)  # the iam-sudo an SDK runs for profile task
    assert config.resolving_profiles(env) == ["task"]
    child = dict(env)  # what its SDK's credential_process inherits: profile task again
    with pytest.raises(ConfigurationError, match="iam-sudo is its own credential source") as e:
        config.use_source_profile(child, None)
    assert "iam-sudo configure task --source-profile PROFILE" in str(e.value)
    # A source profile of its own breaks the cycle.
    config.use_source_profile(child, "dev")
    assert child["AWS_PROFILE"] == "dev"
    assert config.resolving_profiles(child) == ["task", "dev"]


def test_source_profile_default_means_the_default_chain() -> None:
    env = {"AWS_PROFILE": "task", "AWS_DEFAULT_PROFILE": "task"}
    config.use_source_profile(env, "default")
    assert "AWS_PROFILE" not in env
    assert "AWS_DEFAULT_PROFILE" not in env


def test_a_chain_of_iam_sudo_profiles_has_an_end() -> None:
    env = {config.RESOLVING_VARIABLE: "\n".join(f"p{i}" for i in range(8))}
    with pytest.raises(ConfigurationError, match="its own credential source"):
        config.check_not_own_source({**env, "AWS_PROFILE": "other"})


@pytest.mark.parametrize(
    ("line", "ours"),
    [
        (
            "/usr/local/bin/iam-sudo --source-profile d simulate --role-name X --format process",
            True,
        ),
        ("iam-sudo assume --role-name X --format process", True),
        ("/usr/bin/python3 -m iam_sudo simulate --role-name X", True),
        ("'/opt/my tools/iam-sudo' simulate", True),
        ("/bin/creds --comment iam-sudo", False),
        ("/bin/echo iam_sudo", False),
        ("python -m not_iam_sudo iam-sudo", False),
        ("'unclosed", False),
    ],
)
def test_iam_sudos_own_credential_process_is_recognised_by_its_command(
    line: str, ours: bool
) -> None:
    assert runs_iam_sudo(line) is ours


def test_the_credential_process_line_names_where_iam_sudo_gets_its_own_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "dev")
    monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)
    line = process_line(["/bin/iam-sudo"], "task", None, ["simulate", "--role-name", "a b"])
    assert line == (
        "/bin/iam-sudo --source-profile dev simulate --role-name 'a b' --format process"
    )
    with pytest.raises(CredentialsFileError, match="give --source-profile PROFILE"):
        process_line(["/bin/iam-sudo"], "dev", None, ["simulate"])
    with pytest.raises(CredentialsFileError, match="give --source-profile"):
        process_line(["/bin/iam-sudo"], "x", "x", ["simulate"])


@pytest.mark.parametrize("name", ["a b", "tab\tname", "q'uote", 'q"uote', "#x", "é"])
def test_a_profile_name_sdks_would_read_differently_is_refused(name: str) -> None:
    with pytest.raises(CredentialsFileError, match="invalid profile name"):
        config.check_config_profile_name(name)
    config.check_config_profile_name("team-a/dev@corp+1.x%y:z")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_ .", min_size=1, max_size=70))
def test_a_region_name_is_refused_exactly_when_botocore_refuses_it(value: str) -> None:
    # The reference is botocore's own check (botocore.utils.validate_region_name).
    from botocore.exceptions import InvalidRegionError
    from botocore.utils import validate_region_name

    try:
        validate_region_name(value)
        botocore_accepts = True
    except InvalidRegionError:
        botocore_accepts = False
    if botocore_accepts:
        config.check_region_name(value, "AWS_REGION")
    else:
        with pytest.raises(ConfigurationError, match=r"^AWS_REGION is [^\n]*region name"):
            config.check_region_name(value, "AWS_REGION")


def test_a_source_profile_is_found_in_either_file_or_refused_naming_the_option(
    tmp_path: Path,
) -> None:
    (tmp_path / "config").write_text("[profile in-config]\n")
    (tmp_path / "credentials").write_text("[in-credentials]\naws_access_key_id = AKIAX\n")
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    for name in ("in-config", "in-credentials", "default"):
        config.use_source_profile(dict(env), name)
    with pytest.raises(ConfigurationError, match=r"^--source-profile nosuch: there is no such"):
        config.use_source_profile(dict(env), "nosuch")
