"""Planning and applying an installation of the plug-ins for one engine.

`sketchfill install-plugins` and the installers (installers/install.sh, install.ps1) use
this package. It finds the GIMP 3 and Krita profiles of a user (native packages, Flatpak,
Snap, AppImage, macOS app bundles, Windows installs), and puts in each the plug-in, the
shared client, pyzmq unpacked for the hosts' own Pythons (vendor/) and a client.json that
says how to reach or start the engine. It also enables the Krita plug-in in kritarc and
copies the shipped models into the user's data folder.

Everything is planned first (a list of actions; `--dry-run` prints it and stops) and then
applied as one transaction: each destination is built in a staging folder beside it and
swapped in by rename, the old version kept until everything succeeded, and rolled back on
any failure. A journal in the data folder lets the next run finish or undo a run that was
killed part-way. A manifest lists what was installed, for --uninstall and --repair.

One module per job: discovery (where the hosts keep their profiles), plugins (staging a
plug-in with the client beside it), wheels (pyzmq for the hosts' Pythons), kritarc,
transaction, manifest, plans (what a run will do, and applying it) and checks (is an
installed plug-in complete). This file names what the command and the tests use.
"""

from __future__ import annotations

from . import plugins
from .checks import check_client_imports, check_target
from .discovery import (
    APPS,
    FLATPAK,
    GIMP,
    KRITA,
    NATIVE,
    SNAP,
    InstallError,
    Platform,
    Skipped,
    Target,
    discover,
    engine_command_for,
    target_for_dir,
)
from .kritarc import kritarc_disable, kritarc_enable, kritarc_enabled
from .manifest import MANIFEST, Manifest
from .plans import InstallPlugin, Plan, Settings, apply, plan_install, plan_repair, plan_uninstall
from .transaction import JOURNAL, Transaction, recover
from .wheels import TARGET_PYTHONS, Wheel, fetch_pyzmq, unpack_wheels, vendored_pythons

__all__ = [
    "APPS",
    "FLATPAK",
    "GIMP",
    "JOURNAL",
    "KRITA",
    "MANIFEST",
    "NATIVE",
    "SNAP",
    "TARGET_PYTHONS",
    "InstallError",
    "InstallPlugin",
    "Manifest",
    "Plan",
    "Platform",
    "Settings",
    "Skipped",
    "Target",
    "Transaction",
    "Wheel",
    "apply",
    "check_client_imports",
    "check_target",
    "discover",
    "engine_command_for",
    "fetch_pyzmq",
    "kritarc_disable",
    "kritarc_enable",
    "kritarc_enabled",
    "plan_install",
    "plan_repair",
    "plan_uninstall",
    "plugins",
    "recover",
    "target_for_dir",
    "unpack_wheels",
    "vendored_pythons",
]
