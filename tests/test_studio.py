"""Studio mode: CURVE keys on loopback. Only clients whose public key the engine lists get
in; everyone else is refused with a plain message, and the engine keeps serving."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import running_engine
from sketchfill.wire.client import CurveKeys
from sketchfill.wire.config import ClientConfig
from sketchfill.wire.errors import EngineError
from sketchfill.wire.launch import connect
from test_server import edit_request

SKETCHFILL = str(Path(sys.executable).with_name("sketchfill"))


def make_keys(folder: Path, name: str) -> tuple[Path, Path]:
    run = subprocess.run(
        [SKETCHFILL, "keys", "--name", name, "--out", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    return folder / f"{name}.key", folder / f"{name}.key_secret"


@pytest.fixture
def studio(tmp_path):
    keys = tmp_path / "keys"
    engine_public, engine_secret = make_keys(keys, "engine")
    _, artist_secret = make_keys(keys, "artist")
    _, stranger_secret = make_keys(keys, "stranger")
    allowed = tmp_path / "clients"
    allowed.mkdir()
    shutil.copy(keys / "artist.key", allowed)
    return {
        "engine_public": engine_public,
        "engine_secret": engine_secret,
        "allowed": allowed,
        "artist": artist_secret,
        "stranger": stranger_secret,
    }


def test_keys_are_private_and_never_overwritten(tmp_path):
    public, secret = make_keys(tmp_path, "me")
    assert secret.stat().st_mode & 0o077 == 0
    assert "curve" in public.read_text()
    again = subprocess.run(
        [SKETCHFILL, "keys", "--name", "me", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1 and "--force" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.key", "me.key_secret"]


def test_authorised_client_edits_and_others_are_refused(studio, echo_model):
    with running_engine(
        echo_model,
        curve_secret_file=str(studio["engine_secret"]),
        authorized_clients=str(studio["allowed"]),
    ) as engine:
        artist = ClientConfig(
            endpoint=engine.bound_endpoint,
            autostart=False,
            server_public_key=str(studio["engine_public"]),
            client_secret_key=str(studio["artist"]),
        )
        client, hello = connect(artist)
        assert hello["curve"] is True
        assert client.edit(edit_request()).width == 24
        client.close()

        for secret in (studio["stranger"], None):
            config = ClientConfig(
                endpoint=engine.bound_endpoint, autostart=False, connect_timeout=2.0
            )
            if secret:
                config.server_public_key = str(studio["engine_public"])
                config.client_secret_key = str(secret)
            with pytest.raises(EngineError) as err:
                connect(config)
            assert err.value.code in ("unauthorized", "unreachable"), err.value.message
            if secret:
                assert err.value.code == "unauthorized"
                assert "refused this client's credentials" in err.value.message

        client, _ = connect(artist)  # still serving the right people
        assert client.edit(edit_request()).width == 24
        client.close()


def test_public_key_file_is_not_a_secret(studio):
    with pytest.raises(EngineError, match="public key file"):
        CurveKeys.from_files(str(studio["engine_public"]), str(studio["engine_public"]))


def test_serve_needs_both_curve_options():
    run = subprocess.run(
        [SKETCHFILL, "serve", "--curve-secret", "x"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2 and "go together" in run.stderr
