"""The README's defaults: a relative media folder, the service started from its own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from tests.integration.test_black_smoke import jpeg, metadata, upload


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    workdir = tmp_path / "service"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # neither the repository nor the package folder
    return Settings(**{**settings.model_dump(), "media_dir": "instance/media"})


def test_a_relative_media_folder_is_resolved_once_against_the_working_directory(settings, tmp_path):
    assert settings.media_dir == str(tmp_path / "service" / "instance" / "media")


def test_snapshot_images_are_served_from_a_relative_media_folder(app, make_station, login, drain, tmp_path):
    smoke = make_station("BS001", kind="black_smoke")
    pk = upload(smoke, metadata("relative"), [jpeg()]).get_json()["id"]
    drain()
    stored = [p for p in (tmp_path / "service" / "instance" / "media").rglob("*.jpg")]
    assert len(stored) == 1 and stored[0].read_bytes() == jpeg()

    client: Any = app.test_client()
    r = client.get(f"/api/v1/black-smoke/snapshots/{pk}/images/0", headers=login("env_officer", "320200"))
    assert r.status_code == 200 and r.data == jpeg()
