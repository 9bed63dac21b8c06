"""Settings from the environment: validated at start with errors naming the variable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError

KEY = "k" * 32


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"REFGATE_DATA_DIR": str(tmp_path), **values}


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"REFGATE_SECRET_KEYS": "short"}, "REFGATE_SECRET_KEYS"),
        ({"REFGATE_SECRET_KEYS": f"{KEY},,{KEY}x"}, "REFGATE_SECRET_KEYS"),
        ({"REFGATE_SECRET_KEYS": f"{KEY},{KEY}"}, "REFGATE_SECRET_KEYS"),
        ({"REFGATE_PRODUCTION": "1"}, "REFGATE_SECRET_KEYS"),
        ({"REFGATE_PRODUCTION": "maybe"}, "REFGATE_PRODUCTION"),
        ({"REFGATE_IP_HASH_KEY": "salt"}, "REFGATE_IP_HASH_KEY"),
        (
            {
                "REFGATE_SECRET_KEYS": KEY,
                "REFGATE_PRODUCTION": "1",
                "REFGATE_PUBLIC_URL": "http://go.example.com",
            },
            "REFGATE_PUBLIC_URL",
        ),
        ({"REFGATE_PUBLIC_URL": "go.example.com"}, "REFGATE_PUBLIC_URL"),
        ({"REFGATE_PUBLIC_URL": "https://go.example.com/?x=1"}, "REFGATE_PUBLIC_URL"),
        ({"REFGATE_TRUSTED_PROXIES": "two"}, "REFGATE_TRUSTED_PROXIES"),
        ({"REFGATE_TRUSTED_PROXIES": "-1"}, "REFGATE_TRUSTED_PROXIES"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REFGATE_LOG_FORMAT": "xml"}, "REFGATE_LOG_FORMAT"),
        ({"REFGATE_STORE_TIMEOUT": "0"}, "REFGATE_STORE_TIMEOUT"),
        ({"REFGATE_ATTRIBUTION_DAYS": "0"}, "REFGATE_ATTRIBUTION_DAYS"),
        ({"REFGATE_ATTRIBUTION_DAYS": "a month"}, "REFGATE_ATTRIBUTION_DAYS"),
        (
            {"REFGATE_ATTRIBUTION_DAYS": "14", "REFGATE_EVENT_RETENTION_DAYS": "7"},
            "REFGATE_EVENT_RETENTION_DAYS",
        ),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, values: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env(tmp_path, **values))
    assert error.value.name == name
    assert str(error.value).startswith(name)


def test_unwritable_data_dir_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"REFGATE_DATA_DIR": str(blocker / "sub")})
    assert error.value.name == "REFGATE_DATA_DIR"


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that exists but cannot be written in: mode 0500 for an ordinary user; as
    root (a container's default) permissions do not stop writes, so /proc stands in."""
    if os.geteuid() == 0:
        yield Path("/proc")
        return
    path = tmp_path / "readonly"
    path.mkdir()
    path.chmod(0o500)
    try:
        yield path
    finally:
        path.chmod(0o700)


@pytest.mark.parametrize("keys", ["", KEY], ids=["dev-secret", "secret-keys-set"])
def test_existing_unwritable_data_dir_is_a_configuration_error(
    unwritable_dir: Path, keys: str
) -> None:
    """A volume the service's user cannot write (a root-owned host directory mounted into the
    container): named at boot, whether or not a dev secret would be written there."""
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"REFGATE_DATA_DIR": str(unwritable_dir), "REFGATE_SECRET_KEYS": keys})
    assert error.value.name == "REFGATE_DATA_DIR"
    assert f"cannot write in {unwritable_dir} as uid {os.geteuid()}" in str(error.value)


def test_dev_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings.from_env(env(tmp_path))
    second = Settings.from_env(env(tmp_path))
    assert first.secret_keys == second.secret_keys
    assert len(first.secret_keys[0]) >= 32
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o777 == 0o600


def test_keys_newest_first_and_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path, REFGATE_SECRET_KEYS=f"{KEY}new, {KEY}old"))
    assert settings.secret_keys == (f"{KEY}new".encode(), f"{KEY}old".encode())
    assert settings.embedded_store and settings.trusted_proxies == 0
    assert settings.public_url == "http://127.0.0.1:8080"


def test_cli_reports_configuration_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "from gateway.cli import main; main()", "apikey", "list"],
        env={
            "REFGATE_DATA_DIR": str(tmp_path),
            "REFGATE_TRUSTED_PROXIES": "lots",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "REFGATE_TRUSTED_PROXIES" in result.stderr
    assert "Traceback" not in result.stderr


def test_retention_of_click_records_and_events(tmp_path: Path) -> None:
    default = Settings.from_env(env(tmp_path))
    assert (default.attribution_days, default.event_retention_days) == (30, 90)
    # A longer attribution window keeps the stream at least as long, unless told otherwise.
    long = Settings.from_env(env(tmp_path, REFGATE_ATTRIBUTION_DAYS="120"))
    assert (long.attribution_days, long.event_retention_days) == (120, 120)
    short = Settings.from_env(
        env(tmp_path, REFGATE_ATTRIBUTION_DAYS="7", REFGATE_EVENT_RETENTION_DAYS="14")
    )
    assert (short.attribution_days, short.event_retention_days) == (7, 14)


def test_a_new_data_dir_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The embedded store's AOF holds webhook secrets and password hashes, the spool click
    events: created by refgate, the directories holding them are the service user's alone."""
    from gateway.recorder import Spool
    from gateway.store.embedded import EmbeddedRedis

    data_dir = tmp_path / "new" / "data"
    settings = Settings.from_env({"REFGATE_DATA_DIR": str(data_dir), "REFGATE_SECRET_KEYS": KEY})
    EmbeddedRedis(settings.data_dir)
    Spool(settings.data_dir / "spool")
    for path in (data_dir, data_dir / "redis", data_dir / "spool"):
        assert path.stat().st_mode & 0o777 == 0o700, path


def test_production_asks_for_the_public_url_by_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env(tmp_path, REFGATE_SECRET_KEYS=KEY, REFGATE_PRODUCTION="1"))
    assert error.value.name == "REFGATE_PUBLIC_URL"
    assert "required when REFGATE_PRODUCTION is set" in error.value.problem


def test_serve_on_every_interface_without_a_public_url_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The container listens on 0.0.0.0: links minted as http://0.0.0.0:8080/s/... lead
    nowhere, on every poster printed meanwhile."""
    from gateway.server import default_public_url

    with caplog.at_level("WARNING", logger="gateway.server"):
        assert default_public_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
        assert not caplog.records
        assert default_public_url("0.0.0.0", 8080) == "http://0.0.0.0:8080"  # noqa: S104
    assert len(caplog.records) == 1
    assert "REFGATE_PUBLIC_URL is not set" in caplog.records[0].getMessage()
