import configparser
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from iam_sudo import Credentials, CredentialsFileError, write_profile
from iam_sudo.settings.credentials import shared_credentials_file, update_profile

CREDS = Credentials(
    access_key_id="ASIAEXAMPLE",
    secret_access_key="s3cr3t-key",
    session_token="t0ken",
    expiration=datetime(2026, 11, 24, 19, 0, tzinfo=UTC),
)
EXISTING = """\
# my own comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[dev]
region = eu-west-1
aws_access_key_id = OLD
aws_session_token = OLD-TOKEN
; keep me

[prod]
aws_access_key_id = AKIAPROD
"""


def read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser


def test_repr_never_shows_the_secret_parts() -> None:
    assert "s3cr3t" not in repr(CREDS)
    assert "t0ken" not in repr(CREDS)


def test_the_command_env_holds_the_credentials_and_no_profile() -> None:
    base = {
        "AWS_PROFILE": "admin",
        "AWS_DEFAULT_PROFILE": "admin",
        "PATH": "/bin",
        "AWS_SECURITY_TOKEN": "x",
    }
    env = CREDS.env(base)
    assert env == {
        "PATH": "/bin",
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-key",
        "AWS_SESSION_TOKEN": "t0ken",
        # As `aws configure export-credentials --format env` sets it.
        "AWS_CREDENTIAL_EXPIRATION": CREDS.expiration.isoformat(),
    }
    assert base["AWS_PROFILE"] == "admin", "the caller's mapping is not changed"


def test_sts_and_function_replies_both_parse() -> None:
    reply = {**CREDS.to_dict(), "Expiration": "2026-11-24T19:00:00Z"}
    assert Credentials.from_sts(reply) == CREDS


def test_updating_a_profile_keeps_everything_else_in_the_file() -> None:
    values = {"aws_access_key_id": "NEW", "aws_session_token": "NEW-TOKEN"}
    text = update_profile(EXISTING, "dev", values)
    assert text.startswith("# my own comment\n[default]\naws_access_key_id = AKIADEFAULT")
    assert "region = eu-west-1" in text
    assert "; keep me" in text
    assert "OLD" not in text
    assert text.endswith("[prod]\naws_access_key_id = AKIAPROD\n")
    assert read_text(text)["dev"]["aws_session_token"] == "NEW-TOKEN"


def test_long_term_access_keys_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    for profile in ("default", "prod"):
        with pytest.raises(CredentialsFileError, match=f"profile {profile} holds long-term"):
            write_profile(CREDS, profile, path)
    assert path.read_text() == EXISTING


def test_a_symlinked_credentials_file_is_updated_in_place(tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "credentials"
    target.parent.mkdir()
    target.write_text(EXISTING)
    link = tmp_path / "credentials"
    link.symlink_to(target)
    write_profile(CREDS, "sim", link)
    assert link.is_symlink()
    assert read(target)["sim"]["aws_session_token"] == "t0ken"


def test_a_new_profile_is_appended_after_the_others() -> None:
    text = update_profile(EXISTING, "sim", {"aws_access_key_id": "NEW"})
    assert text == EXISTING + "\n[sim]\naws_access_key_id = NEW\n"
    assert update_profile("", "sim", {"k": "v"}) == "[sim]\nk = v\n"


def read_text(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser


def test_write_profile_writes_0600_and_keeps_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    os.chmod(path, 0o644)
    assert write_profile(CREDS, "dev", path) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parser = read(path)
    assert dict(parser["dev"]) == {
        "region": "eu-west-1",
        "aws_access_key_id": "ASIAEXAMPLE",
        "aws_secret_access_key": "s3cr3t-key",
        "aws_session_token": "t0ken",
        "expiration": "2026-11-24T19:00:00+00:00",
    }
    assert parser["default"]["aws_access_key_id"] == "AKIADEFAULT"
    assert parser["prod"]["aws_access_key_id"] == "AKIAPROD"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_the_file_and_its_directory_are_created_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "new" / ".aws" / "credentials"
    write_profile(CREDS, "sim", path)
    assert read(path)["sim"]["aws_session_token"] == "t0ken"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_standard_variable_chooses_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "c"))
    assert shared_credentials_file() == tmp_path / "c"
    monkeypatch.delenv("AWS_SHARED_CREDENTIALS_FILE")
    assert shared_credentials_file() == Path.home() / ".aws" / "credentials"


@pytest.mark.parametrize("name", ["", "a]b", "x\ny", " padded"])
def test_invalid_profile_names_are_refused_and_nothing_is_written(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    with pytest.raises(CredentialsFileError, match="invalid profile name"):
        write_profile(CREDS, name, path)
    assert path.read_text() == EXISTING


def test_an_unwritable_location_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CredentialsFileError, match="cannot write credentials file") as caught:
        write_profile(CREDS, "sim", blocker / "credentials")
    assert "\n" not in str(caught.value)


LONG_TERM_AFTER_A_COMMENTED_HEADER = """\
[tmp]
aws_access_key_id = ASIAOLD
aws_secret_access_key = old
aws_session_token = OLD-TOKEN
[prod] ; long-term
aws_access_key_id = AKIAPROD
aws_secret_access_key = prod-secret
"""


def botocore_profiles(path: Path) -> dict[str, dict[str, str]]:
    from botocore.configloader import raw_config_parse

    return raw_config_parse(str(path))  # type: ignore[no-any-return]


def test_a_header_with_a_comment_keeps_its_long_term_keys(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(LONG_TERM_AFTER_A_COMMENTED_HEADER)
    write_profile(CREDS, "tmp", path)
    profiles = botocore_profiles(path)
    assert profiles["prod"] == {
        "aws_access_key_id": "AKIAPROD",
        "aws_secret_access_key": "prod-secret",
    }
    assert profiles["tmp"]["aws_access_key_id"] == "ASIAEXAMPLE"
    assert profiles["tmp"]["aws_session_token"] == "t0ken"


def test_a_commented_header_with_long_term_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(LONG_TERM_AFTER_A_COMMENTED_HEADER)
    with pytest.raises(CredentialsFileError, match="profile prod holds long-term"):
        write_profile(CREDS, "prod", path)
    assert path.read_text() == LONG_TERM_AFTER_A_COMMENTED_HEADER


@pytest.mark.parametrize(
    "section",
    [
        "aws_access_key_id = AKIAPROD\naws_secret_access_key = s\naws_session_token =\n",
        "aws_access_key_id = AKIAPROD\naws_secret_access_key = s\naws_session_token = t\n",
        "aws_access_key_id = ASIAPROD\naws_secret_access_key = s\n",
        "aws_access_key_id : AKIAPROD\n  \naws_secret_access_key = s\n",
    ],
    ids=["empty-token", "akia-with-token", "no-token", "colon-delimiter"],
)
def test_long_term_keys_are_recognised_however_written(tmp_path: Path, section: str) -> None:
    path = tmp_path / "credentials"
    text = f"[prod]\n{section}"
    path.write_text(text)
    with pytest.raises(CredentialsFileError, match="long-term"):
        write_profile(CREDS, "prod", path)
    assert path.read_text() == text


def test_a_file_aws_tools_cannot_read_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    text = "[a]\nk = v\n[a]\nk = w\n"
    path.write_text(text)
    with pytest.raises(CredentialsFileError, match="cannot be read as AWS tools read it"):
        write_profile(CREDS, "sim", path)
    assert path.read_text() == text


def test_a_crashed_writers_temporary_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    leftover = tmp_path / ".credentials.abc123.tmp"
    leftover.write_text("aws_secret_access_key = from-a-crash\n")
    write_profile(CREDS, "sim", path)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials", "credentials.lock"]


def test_a_symlink_loop_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(CredentialsFileError, match="cannot write credentials file"):
        write_profile(CREDS, "sim", tmp_path / "a")
    assert (tmp_path / "a").is_symlink()


@pytest.mark.parametrize("name", ["DEFAULT", "a\x0cb", "x\u2028y", "tab\there"])
def test_names_botocore_would_read_otherwise_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CredentialsFileError, match="invalid profile name"):
        write_profile(CREDS, name, tmp_path / "credentials")
    assert not (tmp_path / "credentials").exists()


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555])
def test_a_read_only_credentials_file_is_refused_and_left_as_it_is(
    tmp_path: Path, mode: int
) -> None:
    # Even as root (who may write anything): the owner's missing write bit is the user's word.
    path = tmp_path / "credentials"
    path.write_text(EXISTING)
    os.chmod(path, mode)
    before = path.stat()
    with pytest.raises(CredentialsFileError) as caught:
        write_profile(CREDS, "dev", path)
    assert str(caught.value) == (
        f"the credentials file {path} is read-only (mode {mode:o}); iam-sudo will not replace "
        "it: make it writable (chmod u+w) or name another file with AWS_SHARED_CREDENTIALS_FILE"
    )
    after = path.stat()
    assert (after.st_ino, stat.S_IMODE(after.st_mode)) == (before.st_ino, mode)
    assert path.read_text() == EXISTING


def test_a_read_only_aws_config_file_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    from iam_sudo.settings.credentials import write_process_profile

    path = tmp_path / "config"
    path.write_text("[profile other]\nregion = eu-west-1\n")
    os.chmod(path, 0o444)
    with pytest.raises(CredentialsFileError, match=r"the AWS config file .* is read-only"):
        write_process_profile("task", "iam-sudo simulate", path)
    assert path.read_text() == "[profile other]\nregion = eu-west-1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_write_profile_refuses_a_profile_the_config_file_gives_credentials_another_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile dev]\nrole_arn = arn:aws:iam::1:role/R\ncredential_source = Environment\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "me")
    path = tmp_path / "credentials"
    with pytest.raises(CredentialsFileError, match="through role_arn in the AWS config file"):
        write_profile(CREDS, "dev", path)
    with pytest.raises(CredentialsFileError, match="where iam-sudo gets its own credentials"):
        write_profile(CREDS, "me", path)
    assert not path.exists()
    write_profile(CREDS, "other", path)
    assert "[other]" in path.read_text()
