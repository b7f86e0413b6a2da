#!/usr/bin/env bash
# SketchFill installer for Linux and macOS.
#
# Creates the engine's virtual environment in the user's data folder, installs SketchFill
# from the checkout this script lives in, then runs `sketchfill install-plugins` from that
# environment, which puts the GIMP 3 and Krita plug-ins in place (see installers/README.md).
#
#   installers/install.sh [--dry-run] [--uninstall | --repair] [--python PYTHON]
#                         [--wheels DIR] [install-plugins options, e.g. --gimp-dir DIR]
#
# Written for the bash 3.2 that macOS ships: no associative arrays, and every possibly
# empty array is expanded as ${a[@]+"${a[@]}"} (bash < 4.4 calls "${a[@]}" unbound).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
# The same folder as sketchfill.pipeline.runtime.user_data_dir(), where the engine looks for models.
if [ "$(uname -s)" = Darwin ]; then
    DATA="$HOME/Library/Application Support/SketchFill"
else
    DATA="${XDG_DATA_HOME:-$HOME/.local/share}/sketchfill"
fi
VENV="$DATA/venv"
PREVIOUS="$DATA/venv.previous"
COMPLETE=".sketchfill-complete"  # written into an environment once its install succeeded;
# it holds the fingerprint of the sources it was built from (see source_fingerprint)

MODE=install
DRY_RUN=0
PYTHON="${SKETCHFILL_PYTHON:-}"
WHEELS=""
PASS=()      # options for `sketchfill install-plugins`
PIP_LINKS=()

usage() {
    cat <<'EOF'
Usage: install.sh [--dry-run] [--uninstall | --repair] [--python PYTHON] [--wheels DIR]
                  [--gimp-dir DIR]... [--krita-dir DIR]... [--kritarc FILE]
                  [--no-gimp] [--no-krita] [--endpoint ENDPOINT] [--no-autostart]

Installs the SketchFill engine (its own virtual environment in the user's data folder)
and the GIMP 3 and Krita plug-ins. Safe to run again.

  --dry-run        show what would be done; change nothing
  --uninstall      remove the plug-ins, models and engine environment it installed
  --repair         rebuild the engine environment and reinstall everything it installed
                   (after a host update, or when the engine does not start)

Run again, it keeps a healthy engine environment built from these same sources (no
rebuild, seconds instead of minutes) and only updates the plug-ins; a changed checkout (a
new version) or --repair rebuilds it. Options are checked before anything is built.
  --python PYTHON  the Python 3.10+ to build the engine environment with
  --wheels DIR     use wheels from DIR (pyzmq for the plug-ins, and the engine's
                   dependencies; add PIP_NO_INDEX=1 for a machine with no network)
Other options go to `sketchfill install-plugins` (see its --help).
EOF
}

say() { printf '%s\n' "$*"; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --uninstall) MODE=uninstall ;;
        --repair) MODE=repair ;;
        --python) [ $# -ge 2 ] || die "--python needs a value"; PYTHON="$2"; shift ;;
        --python=*) PYTHON="${1#*=}" ;;
        --wheels) [ $# -ge 2 ] || die "--wheels needs a value"; WHEELS="$2"; shift ;;
        --wheels=*) WHEELS="${1#*=}" ;;
        -h | --help) usage; exit 0 ;;
        *) PASS+=("$1") ;;
    esac
    shift
done
# Check the options meant for `sketchfill install-plugins` now, before minutes of building
# the engine environment: a wrong path must not fail only after the rebuild.
check_passed_options() {
    local i=0 opt value
    local n=${#PASS[@]}
    while [ "$i" -lt "$n" ]; do
        opt="${PASS[$i]}"
        value=""
        case "$opt" in
            --gimp-dir=* | --krita-dir=* | --kritarc=* | --endpoint=* | --models=*)
                value="${opt#*=}"
                opt="${opt%%=*}"
                ;;
            --gimp-dir | --krita-dir | --kritarc | --endpoint | --models)
                i=$((i + 1))
                [ "$i" -lt "$n" ] || die "$opt needs a value"
                value="${PASS[$i]}"
                ;;
            --no-gimp | --no-krita | --autostart | --no-autostart) ;;
            *) die "unknown option $opt (see --help)" ;;
        esac
        case "$opt" in
            --gimp-dir | --krita-dir)
                [ -d "$value" ] || die "$opt $value is not a folder; check the path (start the host once to create its profile, or create the folder yourself). Nothing was changed."
                ;;
            --kritarc)
                [ -d "$(dirname "$value")" ] || die "--kritarc $value: its folder does not exist. Nothing was changed."
                ;;
            --models)
                [ -d "$value" ] || die "--models $value is not a folder. Nothing was changed."
                ;;
        esac
        i=$((i + 1))
    done
}
check_passed_options

if [ -n "$WHEELS" ]; then
    [ -d "$WHEELS" ] || die "--wheels: $WHEELS is not a folder"
    WHEELS="$(cd "$WHEELS" && pwd)"
    PASS+=(--wheels "$WHEELS")
    PIP_LINKS=(--find-links "$WHEELS")
fi

find_python() {
    local c
    local candidates=("$PYTHON")
    if [ -z "$PYTHON" ]; then
        # 3.12 first: the version the engine's dependencies (ONNX Runtime) support best.
        candidates=(python3.12 python3.11 python3.13 python3.10 python3)
    fi
    for c in "${candidates[@]}"; do
        if command -v "$c" >/dev/null 2>&1 &&
            "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' \
                >/dev/null 2>&1; then
            PY="$(command -v "$c")"
            return 0
        fi
    done
    die "found no Python 3.10 or newer with the venv module (tried ${candidates[*]}).
Install one (Debian, Ubuntu: sudo apt install python3 python3-venv; Fedora: sudo dnf
install python3; macOS: brew install python@3.12, or the installer from python.org) and
run this again, or name one with --python PATH."
}

healthy() { [ -f "$1/$COMPLETE" ] && "$1/bin/sketchfill" --version >/dev/null 2>&1; }

# What the engine environment is built from: the package's files and pyproject.toml (its
# version among them). An environment built from other sources is rebuilt; one built from
# these is kept. cksum is in POSIX, so macOS has it too.
source_fingerprint() {
    (cd "$REPO" && find pyproject.toml engine plugin_gimp plugin_krita -type f \
        ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort | while IFS= read -r f; do
        printf '%s ' "$f"
        cksum <"$f"
    done) | cksum | cut -d' ' -f1
}

# Healthy and built from these sources: nothing to rebuild.
current() { healthy "$1" && [ "$(cat "$1/$COMPLETE")" = "$(source_fingerprint)" ]; }

recover_venv() {
    # A run killed while replacing the environment: keep whichever one is complete.
    [ -d "$PREVIOUS" ] || return 0
    if [ -f "$VENV/$COMPLETE" ]; then
        rm -rf "$PREVIOUS"
    else
        rm -rf "$VENV"
        mv "$PREVIOUS" "$VENV"
        say "Restored the engine environment that an interrupted run had moved aside."
    fi
}

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/sketchfill-install.XXXXXX")"
REPLACING=0
DATA_EXISTED=0
[ -d "$DATA" ] && DATA_EXISTED=1

on_exit() {
    local rc=$?
    if [ "$REPLACING" = 1 ]; then
        rm -rf "$VENV"
        if [ -d "$PREVIOUS" ]; then mv "$PREVIOUS" "$VENV"; fi
        if [ "$DATA_EXISTED" = 0 ]; then rmdir "$DATA" 2>/dev/null || true; fi
        printf '\nSketchFill was not installed, and nothing was changed: the engine environment and\nthe plug-ins are as they were before. Fix the cause above and run %s again.\n' \
            "$0" >&2
    fi
    rm -rf "$SCRATCH"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM HUP

make_venv() {
    # pip builds from a copy, so the checkout is never written to (and no stale build/
    # folder in it can leak old files into the package).
    local src="$SCRATCH/src"
    if [ ! -d "$src" ]; then
        mkdir -p "$src"
        cp "$REPO/pyproject.toml" "$REPO/README.md" "$src/"
        cp -R "$REPO/engine" "$REPO/plugin_gimp" "$REPO/plugin_krita" "$src/"
    fi
    say "Creating the engine environment $1 with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
    "$PY" -m venv "$1"
    say "Installing SketchFill and its dependencies into it"
    "$1/bin/python" -m pip install --disable-pip-version-check --quiet \
        ${PIP_LINKS[@]+"${PIP_LINKS[@]}"} "$src"
}

install_plugins() {
    local engine="$1"
    shift
    "$engine/bin/sketchfill" install-plugins --engine-venv "$VENV" --models "$REPO/models" \
        "$@" ${PASS[@]+"${PASS[@]}"}
}

# Virtual environments are not relocatable (their scripts name their own path), so the
# new one cannot be built elsewhere and renamed into place. Instead the old one is moved
# aside, the new one built at the final path, and the old one put back if anything fails.
replace_venv_and_install() {
    REPLACING=1
    if [ -d "$VENV" ]; then mv "$VENV" "$PREVIOUS"; fi
    mkdir -p "$DATA"
    make_venv "$VENV"
    install_plugins "$VENV" "$@"
    source_fingerprint >"$VENV/$COMPLETE"
    REPLACING=0
    rm -rf "$PREVIOUS"
}

find_python

if [ "$DRY_RUN" = 1 ]; then
    # A throwaway environment runs the plan, so the real one is not touched (a current one
    # is only read: nothing to build).
    [ -d "$PREVIOUS" ] && say "An interrupted run left $PREVIOUS: the next run tidies it up."
    planner="$SCRATCH/venv"
    if current "$VENV"; then planner="$VENV"; else make_venv "$planner"; fi
    case "$MODE" in
        install)
            if current "$VENV"; then
                say "Would keep the engine environment $VENV (healthy, built from these sources)"
            else
                say "Would (re)create the engine environment $VENV"
            fi
            ;;
        repair) say "Would rebuild the engine environment $VENV" ;;
    esac
    if [ "$MODE" != uninstall ] || [ -f "$DATA/install-manifest.json" ]; then
        mode_flag=()
        [ "$MODE" = install ] || mode_flag=("--$MODE")
        install_plugins "$planner" --dry-run ${mode_flag[@]+"${mode_flag[@]}"}
    fi
    [ "$MODE" = uninstall ] && say "Would remove the engine environment $VENV"
    exit 0
fi

recover_venv
case "$MODE" in
    install)
        if current "$VENV"; then
            say "Keeping the engine environment $VENV: healthy and built from these sources (--repair rebuilds it)"
            install_plugins "$VENV"
        else
            if healthy "$VENV"; then
                say "The engine environment $VENV was built from other sources (another version): rebuilding it"
            elif [ -d "$VENV" ]; then
                say "The engine environment $VENV is broken: rebuilding it"
            fi
            replace_venv_and_install
        fi
        say "SketchFill is installed. The engine: $VENV/bin/sketchfill"
        ;;
    repair)
        say "Rebuilding the engine environment $VENV"
        replace_venv_and_install --repair
        ;;
    uninstall)
        if [ -f "$DATA/install-manifest.json" ]; then
            engine="$VENV"
            if ! healthy "$VENV"; then
                make_venv "$SCRATCH/venv"
                engine="$SCRATCH/venv"
            fi
            "$engine/bin/sketchfill" install-plugins --uninstall ${PASS[@]+"${PASS[@]}"}
        else
            say "No plug-ins were installed by this installer (no $DATA/install-manifest.json)."
        fi
        rm -rf "$VENV" "$PREVIOUS"
        rmdir "$DATA" 2>/dev/null || true
        say "Removed the engine environment $VENV. Downloaded pyzmq wheels stay in the cache" \
            "${XDG_CACHE_HOME:-$HOME/.cache}/sketchfill (macOS: ~/Library/Caches/SketchFill)."
        ;;
esac
