"""Plans: what an install, repair or uninstall will do, as a list of actions (`--dry-run`
prints it), and `apply`, which runs them as one transaction."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from ..wire import protocol
from ..wire.config import ClientConfig
from ..wire.errors import EngineError
from . import plugins
from .checks import check_target
from .discovery import (
    FLATPAK,
    FLATPAK_IDS,
    GIMP,
    KRITA,
    SNAP,
    InstallError,
    Platform,
    Skipped,
    Target,
    discover,
    target_for_dir,
)
from .kritarc import ENABLE_KEY, KRITARC_BACKUP_SUFFIX, kritarc_disable, kritarc_enable
from .manifest import MANIFEST, Manifest
from .transaction import Transaction, recover, remove_empty
from .wheels import TARGET_PYTHONS, fetch_pyzmq, file_sha256, platform_words, unpack_wheels


@dataclass
class Settings:
    """What to install and how the plug-ins reach the engine. `endpoint` and `autostart`
    are None unless given: a re-run keeps what the user set in client.json."""

    engine_command: list[str]
    engine_venv: Path | None = None
    endpoint: str | None = None
    autostart: bool | None = None
    gimp: bool = True
    krita: bool = True
    gimp_dirs: list[Path] = field(default_factory=list)
    krita_dirs: list[Path] = field(default_factory=list)
    kritarc: Path | None = None
    wheels: Path | None = None
    models: Path | None = None
    # Plug-in sources per app (folders laid out like plugin_gimp/, plugin_krita/); default:
    # the ones shipped in the package.
    sources: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class Work:
    """What the actions share while a plan is applied."""

    txn: Transaction
    vendor: Path | None = None
    kritarcs: dict[str, bool] = field(default_factory=dict)
    installed: list[Path] = field(default_factory=list)


class Action(Protocol):
    def describe(self) -> str: ...

    def apply(self, work: Work) -> None: ...


@dataclass
class VendorPyzmq:
    """Fetch and unpack pyzmq before anything in the user's folders changes."""

    platform: Platform
    wheels: Path | None
    scratch: Path

    def describe(self) -> str:
        source = self.wheels or f"the cache {self.platform.cache_dir} or the package index"
        versions = ", ".join(TARGET_PYTHONS) + " and later"
        return f"get pyzmq for CPython {versions} ({platform_words(self.platform)}) from {source}"

    def apply(self, work: Work) -> None:
        downloaded = fetch_pyzmq(
            self.platform,
            self.scratch / "wheels",
            wheels=self.wheels,
            cache=self.platform.cache_dir,
        )
        work.vendor = self.scratch / plugins.VENDOR
        unpack_wheels(downloaded, work.vendor)


@dataclass
class InstallPlugin:
    target: Target
    settings: Settings
    source: Path

    def describe(self) -> str:
        what = "plug-in, client, pyzmq, client.json"
        new = " (creating the profile: the host has not run yet)" if self.target.new else ""
        return f"install the {self.target.label} plug-in ({what}) in {self.target.plugin_dir}{new}"

    def apply(self, work: Work) -> None:
        parent = work.txn.scratch(self.target.plugin_root, "staging")
        stage = plugins.stage_gimp if self.target.app == GIMP else plugins.stage_krita
        made = stage(parent, source=self.source, vendor=work.vendor)
        self.config().save(made / "client.json")
        for dest in self.target.paths:
            work.txn.put(parent / dest.name, dest)
        work.installed.extend(self.target.paths)

    def config(self) -> ClientConfig:
        existing = self.target.plugin_dir / "client.json"
        try:
            config = ClientConfig.load(existing) if existing.is_file() else ClientConfig()
        except EngineError:
            config = ClientConfig()  # unreadable: start from the defaults
        command = list(self.settings.engine_command)
        if self.target.flavour == FLATPAK:
            command = ["flatpak-spawn", "--host", *command]
        config.engine_command = command
        if self.settings.endpoint is not None:
            config.endpoint = self.settings.endpoint
        if self.settings.autostart is not None:
            config.autostart = self.settings.autostart
        if self.target.flavour == SNAP:
            config.autostart = False  # strict confinement cannot start a program outside it
        return config


@dataclass
class EnableInKritarc:
    kritarc: Path
    created: bool

    def describe(self) -> str:
        return f"enable the plug-in in {self.kritarc} ([python] {ENABLE_KEY.decode()}=true)"

    def apply(self, work: Work) -> None:
        old = self.kritarc.read_bytes() if self.kritarc.is_file() else b""
        new = kritarc_enable(old)
        if new != old:
            if self.kritarc.is_file():
                backup = self.kritarc.with_name(self.kritarc.name + KRITARC_BACKUP_SUFFIX)
                work.txn.write(backup, old)
                work.installed.append(backup)
            work.txn.write(self.kritarc, new)
        work.kritarcs[str(self.kritarc)] = self.created


@dataclass
class CopyModel:
    source: Path
    dest: Path

    def describe(self) -> str:
        return f"copy the model {self.source.name} to {self.dest}"

    def apply(self, work: Work) -> None:
        work.installed.append(self.dest)
        if _same_tree(self.source, self.dest):
            return
        stage = work.txn.scratch(self.dest.parent, "staging")
        shutil.copytree(self.source, stage / self.dest.name)
        work.txn.put(stage / self.dest.name, self.dest)


@dataclass
class WriteManifest:
    path: Path
    base: Manifest
    previous: Manifest | None

    def describe(self) -> str:
        return f"write the install manifest {self.path}"

    def apply(self, work: Work) -> None:
        m = replace(self.base, paths=list(work.installed), kritarcs=dict(work.kritarcs))
        m.created_dirs = list(work.txn.created)
        if self.previous is not None:
            # Keep what earlier runs installed and this one did not touch (e.g. --no-gimp).
            m.paths += [p for p in self.previous.paths if p not in m.paths and _exists(p)]
            m.created_dirs += [d for d in self.previous.created_dirs if d not in m.created_dirs]
            for rc, created in self.previous.kritarcs.items():
                m.kritarcs[rc] = created or m.kritarcs.get(rc, False)
            known = {t.plugin_dir for t in m.targets}
            m.targets += [
                t for t in self.previous.targets if t.plugin_dir not in known and _exists(t.profile)
            ]
        # Sorted, so that a run that changes nothing (--repair) rewrites the same manifest.
        m.paths = sorted(set(m.paths))
        work.txn.write(self.path, m.to_json().encode())


@dataclass
class RemovePath:
    path: Path

    def describe(self) -> str:
        return f"remove {self.path}"

    def apply(self, work: Work) -> None:
        if _exists(self.path):
            work.txn.put(None, self.path)


@dataclass
class DisableInKritarc:
    kritarc: Path
    created: bool

    def describe(self) -> str:
        return f"remove {ENABLE_KEY.decode()} from {self.kritarc}"

    def apply(self, work: Work) -> None:
        if not self.kritarc.is_file():
            return
        old = self.kritarc.read_bytes()
        new = kritarc_disable(old)
        if self.created and not new.strip():
            work.txn.put(None, self.kritarc)
        elif new != old:
            work.txn.write(self.kritarc, new)


@dataclass
class Plan:
    kind: str  # "install", "repair" or "uninstall"
    platform: Platform
    actions: list[Action]
    targets: list[Target] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # found before a repair
    scratch: Path | None = None
    cleanup: list[Path] = field(default_factory=list)  # folders to remove if left empty

    def report(self) -> str:
        lines = []
        if self.kind != "uninstall":
            lines.append("Found:" if self.targets else "Found no GIMP 3 or Krita profile.")
            lines += [f"  {t.label}: {t.profile}" for t in self.targets]
            if self.skipped:
                lines.append("Not found:")
                lines += [f"  {s}" for s in self.skipped]
        if self.problems:
            lines.append("Problems found:")
            lines += [f"  {p}" for p in self.problems]
        lines.append("Plan:")
        lines += [f"  {i}. {a.describe()}" for i, a in enumerate(self.actions, 1)]
        if self.notes:
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def plan_install(p: Platform, settings: Settings, *, repair: bool = False) -> Plan:
    """What an installation would do; reads the user's folders, changes nothing."""
    previous = Manifest.load(p.data_dir)
    targets, skipped = _targets(p, settings, previous)
    scratch = Path(tempfile.gettempdir()) / f"sketchfill-install-{uuid.uuid4().hex}"
    actions: list[Action] = []
    if targets:
        actions.append(VendorPyzmq(p, settings.wheels, scratch))
    for target in targets:
        actions.append(InstallPlugin(target, settings, _source(target.app, settings)))
    previous_rcs = previous.kritarcs if previous else {}
    for rc in dict.fromkeys(t.kritarc for t in targets if t.kritarc is not None):
        created = previous_rcs.get(str(rc), not rc.exists())
        actions.append(EnableInKritarc(rc, created))
    models, notes = _models(p, settings)
    actions += models
    base = Manifest(
        engine_command=settings.engine_command,
        engine_venv=str(settings.engine_venv) if settings.engine_venv else None,
        endpoint=settings.endpoint,
        autostart=settings.autostart,
        targets=targets,
    )
    actions.append(WriteManifest(p.data_dir / MANIFEST, base, previous))
    notes += _notes(targets, settings)
    kind = "repair" if repair else "install"
    return Plan(kind, p, actions, targets, skipped, notes, scratch=scratch)


def plan_repair(p: Platform, settings: Settings) -> Plan:
    """Install again with the settings the manifest remembers, plus any profile that
    appeared since (a host update that started a new GIMP 3.x profile)."""
    manifest = Manifest.load(p.data_dir)
    if manifest is None:
        raise InstallError(
            f"nothing to repair: no install manifest in {p.data_dir}; install SketchFill first"
        )
    remembered = replace(
        settings,
        engine_command=manifest.engine_command,
        engine_venv=Path(manifest.engine_venv) if manifest.engine_venv else settings.engine_venv,
        endpoint=settings.endpoint if settings.endpoint is not None else manifest.endpoint,
        autostart=settings.autostart if settings.autostart is not None else manifest.autostart,
    )
    plan = plan_install(p, remembered, repair=True)
    plan.problems = [
        problem for t in manifest.targets if _exists(t.profile) for problem in check_target(t, p)
    ]
    return plan


def plan_uninstall(p: Platform) -> Plan:
    manifest = Manifest.load(p.data_dir)
    if manifest is None:
        leftovers = [t.plugin_dir for t in discover(p)[0] if t.plugin_dir.exists()]
        hint = "".join(f"\n  {d} (not installed by this installer)" for d in leftovers)
        raise InstallError(f"nothing to uninstall: no install manifest in {p.data_dir}{hint}")
    actions: list[Action] = [RemovePath(path) for path in manifest.paths]
    actions += [DisableInKritarc(Path(rc), created) for rc, created in manifest.kritarcs.items()]
    actions.append(RemovePath(p.data_dir / MANIFEST))
    notes = []
    if manifest.engine_venv:
        notes.append(
            f"the engine's environment {manifest.engine_venv} stays; the installer script "
            "removes it (install.sh --uninstall), or delete the folder"
        )
    return Plan("uninstall", p, actions, notes=notes, cleanup=manifest.created_dirs)


def apply(plan: Plan) -> None:
    """Carry a plan out as one transaction, checked before it is committed. Raises
    InstallError after rolling everything back."""
    recover(plan.platform.data_dir)
    txn = Transaction(plan.platform.data_dir)
    work = Work(txn)
    try:
        for action in plan.actions:
            action.apply(work)
        if plan.kind != "uninstall":
            problems = [problem for t in plan.targets for problem in check_target(t, plan.platform)]
            if problems:
                raise InstallError(
                    "the installed plug-ins do not check out: " + "; ".join(problems)
                )
    except BaseException as exc:
        try:
            txn.rollback()
        except OSError as undo:
            raise InstallError(
                f"{exc}\nUndoing the changes failed too ({undo}); {txn.journal} records them, "
                "and the next run of the installer finishes undoing them."
            ) from exc
        if isinstance(exc, (InstallError, OSError, EngineError, subprocess.SubprocessError)):
            raise InstallError(f"{exc}\n{_NOTHING_CHANGED}") from exc
        raise
    finally:
        if plan.scratch is not None:
            shutil.rmtree(plan.scratch, ignore_errors=True)
    txn.commit()
    remove_empty(plan.cleanup)
    if plan.kind == "uninstall":
        remove_empty([plan.platform.data_dir])


_NOTHING_CHANGED = (
    "Nothing was changed: everything is as it was before this run. Close GIMP and Krita if "
    "they are running, fix the cause above, and run the installer again."
)


def _targets(
    p: Platform, settings: Settings, previous: Manifest | None
) -> tuple[list[Target], list[Skipped]]:
    found, skipped = discover(p)
    targets: list[Target] = []
    for app, wanted, given in (
        (GIMP, settings.gimp, settings.gimp_dirs),
        (KRITA, settings.krita, settings.krita_dirs),
    ):
        if not wanted:
            continue
        for folder in given:
            if not folder.is_dir():
                raise InstallError(
                    f"--{app}-dir {folder} is not a folder; check the path (start the host "
                    "once to create its profile, or create the folder yourself)"
                )
            targets.append(target_for_dir(app, folder, p, settings.kritarc))
        if not given:
            targets += [t for t in found if t.app == app]
        if previous is not None:
            # Places an earlier run installed into stay up to date, even if not found now.
            targets += [t for t in previous.targets if t.app == app and _exists(t.profile)]
    unique: dict[Path, Target] = {}
    for t in targets:
        unique.setdefault(t.plugin_dir, t)
    searched = {GIMP: settings.gimp and not settings.gimp_dirs}
    searched[KRITA] = settings.krita and not settings.krita_dirs
    return list(unique.values()), [s for s in skipped if searched[s.app]]


def _source(app: str, settings: Settings) -> Path:
    source = settings.sources.get(app) or plugins.plugin_source(app)
    name = plugins.PLUGIN_NAME
    needed = [source / name / f"{name}.py"] if app == GIMP else []
    needed += [source / f"{name}.desktop", source / name / "__init__.py"] if app == KRITA else []
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise InstallError(
            f"this copy of SketchFill lacks its {app} plug-in ({', '.join(missing)} missing); "
            "reinstall the package"
        )
    return source


def _models(p: Platform, settings: Settings) -> tuple[list[Action], list[str]]:
    folder = settings.models
    shipped = []
    if folder is not None and folder.is_dir():
        shipped = sorted(d for d in folder.iterdir() if (d / "model.json").is_file())
    installed = p.data_dir / "models"
    if not shipped:
        if installed.is_dir() and any(installed.glob("*/model.json")):
            return [], []
        where = f" in {folder}" if folder else ""
        return [], [
            f"no model ships with this copy of SketchFill{where}: the engine answers "
            f"model_missing until one is in {installed}"
        ]
    return [CopyModel(d, installed / d.name) for d in shipped], []


def _notes(targets: list[Target], settings: Settings) -> list[str]:
    notes = []
    engine = " ".join(settings.engine_command)
    for t in targets:
        name = "GIMP" if t.app == GIMP else "Krita"
        if t.flavour == FLATPAK:
            notes.append(
                f"{name} (Flatpak) starts the engine outside its sandbox with flatpak-spawn; "
                "allow that once with: flatpak override --user "
                f"--talk-name=org.freedesktop.Flatpak {FLATPAK_IDS[t.app]} (or start the engine "
                f"yourself: {engine} serve)"
            )
        if t.flavour == SNAP:
            notes.append(
                f"{name} (Snap) is confined and cannot start the engine, so auto-start is off "
                "for it: run the engine as a user service (README, 'Snap'), or start it "
                f"yourself: {engine} serve"
            )
    if any(t.app == KRITA for t in targets):
        notes.append(
            "close Krita before installing: it rewrites kritarc when it quits; GIMP and Krita "
            "load the plug-in at their next start"
        )
    if not targets:
        endpoint = settings.endpoint or protocol.DEFAULT_ENDPOINT
        notes.append(
            "install GIMP 3 or Krita and run this again, or name a profile with --gimp-dir or "
            f"--krita-dir; the engine itself works now ({endpoint})"
        )
    return list(dict.fromkeys(notes))


def _same_tree(a: Path, b: Path) -> bool:
    if not b.is_dir():
        return False
    files_a = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    files_b = sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file())
    if files_a != files_b:
        return False
    return all(file_sha256(a / f) == file_sha256(b / f) for f in files_a)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
