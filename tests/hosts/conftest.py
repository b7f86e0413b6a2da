"""pytest fixtures for tests that drive the REAL GIMP 3 and Krita (tests/hosts/).

Session fixtures set the hosts up once (cold: ~2 min, cached: <1 s) and hand out runners:

    def test_x(gimp):            # hostenv.run_gimp_batch, GIMP 3.0 in the trixie chroot
        run = gimp("print(1)").check()
    def test_y(krita):           # hostenv.run_krita, Debian 12 Krita 5.1.5 (the baseline)
        verdict = krita(MODULE_DIR, "module", "func", ["arg"]).check()
    def test_z(krita_chroot):    # the same with Krita 5.2 in the trixie chroot

A host that cannot be set up FAILS its tests with the set-up error. SKETCHFILL_SKIP_HOSTS=1
skips every test marked ``hosts`` here instead (and SKETCHFILL_CHROOT_KRITA=0 skips the
Krita 5.2 ones).
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hostenv

SKIP_REASON = "SKETCHFILL_SKIP_HOSTS=1: the real GIMP/Krita host tests are switched off"


def hosts_skipped() -> bool:
    return os.environ.get("SKETCHFILL_SKIP_HOSTS", "").strip() == "1"


@pytest.fixture(autouse=True)
def _skip_hosts_when_opted_out(request):
    if request.node.get_closest_marker("hosts") and hosts_skipped():
        pytest.skip(SKIP_REASON)


@pytest.fixture(scope="session")
def host_setup():
    """Set every host up at once (the chroot and the host Krita in parallel); returns
    hostenv.setup()'s summary. Errors are kept per host, so each runner fixture fails
    (never skips) with its own host's message."""
    if hosts_skipped():
        pytest.skip(SKIP_REASON)
    info = hostenv.setup(chroot_krita=hostenv.want_chroot_krita())
    sys.stderr.write(f"\n[hostenv] hosts ready: {info}\n")
    yield info
    hostenv.close_session()


def _require(info: dict, name: str) -> None:
    error = info["errors"].get(name)
    if error:
        pytest.fail(f"host {name!r} could not be set up:\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def gimp(host_setup):
    """hostenv.run_gimp_batch: run a python-fu batch script in GIMP 3 (trixie chroot)."""
    _require(host_setup, "gimp")
    return hostenv.run_gimp_batch


@pytest.fixture(scope="session")
def krita(host_setup):
    """hostenv.run_krita with host="system": Debian 12's Krita 5.1.5 via kritarunner."""
    _require(host_setup, "krita-system")
    return partial(hostenv.run_krita, host="system")


@pytest.fixture(scope="session")
def krita_chroot(host_setup):
    """hostenv.run_krita with host="chroot": Krita 5.2 in the trixie chroot."""
    if not hostenv.want_chroot_krita():
        pytest.skip("SKETCHFILL_CHROOT_KRITA=0: no Krita in the chroot")
    _require(host_setup, "krita-chroot")
    return partial(hostenv.run_krita, host="chroot")


@pytest.fixture(params=["system", "chroot"])
def any_krita(request, host_setup):
    """Each Krita in turn: run_krita bound to "system" (5.1.5) then "chroot" (5.2)."""
    if request.param == "chroot" and not hostenv.want_chroot_krita():
        pytest.skip("SKETCHFILL_CHROOT_KRITA=0: no Krita in the chroot")
    _require(host_setup, f"krita-{request.param}")
    return partial(hostenv.run_krita, host=request.param)


# -- a real engine process on loopback, for the plug-in tests ------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model: Path, tmp: Path):
    """`sketchfill serve` as its own process, as users run it; yields its endpoint."""
    import subprocess
    import time

    from sketchfill.wire.client import Client
    from sketchfill.wire.errors import EngineError

    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    log = open(tmp / "engine.log", "wb")  # noqa: SIM115 - closed below, after the process
    sketchfill = Path(sys.executable).with_name("sketchfill")
    proc = subprocess.Popen(
        [str(sketchfill), "serve", "--endpoint", endpoint, "--model", str(model)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with Client(endpoint) as client:
                try:
                    client.hello(0.5)
                    break
                except EngineError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"engine did not start: {(tmp / 'engine.log').read_text()}"
                        ) from None
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


@pytest.fixture(scope="session")
def engine_endpoint(tmp_path_factory):
    """A real engine serving the tiny echo generator (output = erased image + colour -
    sketch): plumbing is checked exactly, independent of any trained model."""
    from onnx_fixtures import build_model

    tmp = tmp_path_factory.mktemp("engine")
    # 256 px: the engine frames the whole face for an edit, and the tests' small masks must
    # still span enough model pixels for the echo's answer to be checked inside them.
    yield from _serve(build_model(tmp / "echo", resolution=256), tmp)


@pytest.fixture(scope="session")
def slow_engine_endpoint(tmp_path_factory):
    """A real engine whose generator takes about two seconds: for cancel and progress."""
    from onnx_fixtures import build_model

    tmp = tmp_path_factory.mktemp("slow-engine")
    model = build_model(tmp / "slow", resolution=256, slow_convs=60, name="slow")
    yield from _serve(model, tmp)


@pytest.fixture
def dead_endpoint() -> str:
    """A loopback endpoint nobody serves."""
    return f"tcp://127.0.0.1:{_free_port()}"
