# SketchFill installer for Windows: the same steps as install.sh.
#
# Creates the engine's virtual environment in %LOCALAPPDATA%\SketchFill\venv, installs
# SketchFill from the checkout this script lives in, then runs `sketchfill install-plugins`
# from that environment, which puts the GIMP 3 and Krita plug-ins in place.
#
#   powershell -ExecutionPolicy Bypass -File installers\install.ps1 [--dry-run]
#       [--uninstall | --repair] [--python PYTHON] [--wheels DIR] [install-plugins options]
#
# Options are spelled as for install.sh (and parsed by hand from $args for that reason).
# Works in Windows PowerShell 5.1 and PowerShell 7.

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3

$Repo = Split-Path -Parent $PSScriptRoot
# The same folder as sketchfill.pipeline.runtime.user_data_dir(), where the engine looks for models.
$LocalAppData = if ($env:LOCALAPPDATA) { $env:LOCALAPPDATA } else { Join-Path $HOME 'AppData\Local' }
$Data = Join-Path $LocalAppData 'SketchFill'
$Venv = Join-Path $Data 'venv'
$Previous = Join-Path $Data 'venv.previous'
$Complete = '.sketchfill-complete'  # written into an environment once its install succeeded;
# it holds the fingerprint of the sources it was built from (see Get-SourceFingerprint)

$Mode = 'install'
$DryRun = $false
$Python = $env:SKETCHFILL_PYTHON
$Wheels = ''
$Pass = @()      # options for `sketchfill install-plugins`
$PipLinks = @()

function Show-Usage {
    @'
Usage: install.ps1 [--dry-run] [--uninstall | --repair] [--python PYTHON] [--wheels DIR]
                   [--gimp-dir DIR]... [--krita-dir DIR]... [--kritarc FILE]
                   [--no-gimp] [--no-krita] [--endpoint ENDPOINT] [--no-autostart]

Installs the SketchFill engine (its own virtual environment in the user's data folder)
and the GIMP 3 and Krita plug-ins. Safe to run again.

  --dry-run        show what would be done; change nothing
  --uninstall      remove the plug-ins, models and engine environment it installed
  --repair         rebuild the engine environment and reinstall everything it installed
                   (after a host update, or when the engine does not start)

Run again, it keeps a healthy engine environment built from these same sources (no
rebuild) and only updates the plug-ins; a changed checkout (a new version) or --repair
rebuilds it. Options are checked before anything is built.
  --python PYTHON  the Python 3.10+ to build the engine environment with
  --wheels DIR     use wheels from DIR (pyzmq for the plug-ins, and the engine's
                   dependencies; set PIP_NO_INDEX=1 for a machine with no network)
Other options go to `sketchfill install-plugins` (see its --help).
'@ | Write-Output
}

function Stop-Install([string]$Message) {
    throw "install.ps1: $Message"
}

for ($i = 0; $i -lt $args.Count; $i++) {
    $arg = [string]$args[$i]
    if ($arg -eq '--dry-run') { $DryRun = $true }
    elseif ($arg -eq '--uninstall') { $Mode = 'uninstall' }
    elseif ($arg -eq '--repair') { $Mode = 'repair' }
    elseif ($arg -eq '--python' -or $arg -eq '--wheels') {
        if ($i + 1 -ge $args.Count) { Stop-Install "$arg needs a value" }
        $i++
        if ($arg -eq '--python') { $Python = [string]$args[$i] } else { $Wheels = [string]$args[$i] }
    }
    elseif ($arg.StartsWith('--python=')) { $Python = $arg.Substring(9) }
    elseif ($arg.StartsWith('--wheels=')) { $Wheels = $arg.Substring(9) }
    elseif ($arg -eq '-h' -or $arg -eq '--help') { Show-Usage; exit 0 }
    else { $Pass += $arg }
}
# Check the options meant for `sketchfill install-plugins` now, before minutes of building
# the engine environment: a wrong path must not fail only after the rebuild.
$withValue = @('--gimp-dir', '--krita-dir', '--kritarc', '--endpoint', '--models')
$flags = @('--no-gimp', '--no-krita', '--autostart', '--no-autostart')
for ($i = 0; $i -lt $Pass.Count; $i++) {
    $opt = [string]$Pass[$i]
    $value = $null
    if ($opt.Contains('=') -and $withValue -contains $opt.Split('=')[0]) {
        $value = $opt.Substring($opt.IndexOf('=') + 1)
        $opt = $opt.Split('=')[0]
    } elseif ($withValue -contains $opt) {
        if ($i + 1 -ge $Pass.Count) { Stop-Install "$opt needs a value" }
        $i++
        $value = [string]$Pass[$i]
    } elseif (-not ($flags -contains $opt)) {
        Stop-Install "unknown option $opt (see --help)"
    }
    if (($opt -eq '--gimp-dir' -or $opt -eq '--krita-dir' -or $opt -eq '--models') -and
        -not (Test-Path -PathType Container $value)) {
        Stop-Install ("$opt $value is not a folder; check the path (start the host once to " +
            'create its profile, or create the folder yourself). Nothing was changed.')
    }
    if ($opt -eq '--kritarc' -and -not (Test-Path -PathType Container (Split-Path -Parent $value))) {
        Stop-Install "--kritarc ${value}: its folder does not exist. Nothing was changed."
    }
}

if ($Wheels) {
    if (-not (Test-Path -PathType Container $Wheels)) { Stop-Install "--wheels: $Wheels is not a folder" }
    $Wheels = (Resolve-Path $Wheels).Path
    $Pass += @('--wheels', $Wheels)
    $PipLinks = @('--find-links', $Wheels)
}

# Runs a program; a non-zero exit status stops the installer (native programs do not throw).
function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe exited with status $LASTEXITCODE" }
}

function Find-Python {
    if ($Python) {
        $candidates = @(, @($Python))
    } else {
        # 3.12 first: the version the engine's dependencies (ONNX Runtime) support best.
        $candidates = @(@('py', '-3.12'), @('py', '-3.11'), @('py', '-3.13'), @('py', '-3.10'), @('python'))
    }
    $probe = 'import sys, venv, ensurepip; assert sys.version_info >= (3, 10); print(sys.executable)'
    foreach ($candidate in $candidates) {
        $exe = $candidate[0]
        $rest = @($candidate | Select-Object -Skip 1)
        try {
            $found = & $exe @rest -c $probe 2>$null
            if ($LASTEXITCODE -eq 0 -and $found) { return [string]($found | Select-Object -Last 1) }
        } catch {
            continue  # not installed: try the next one
        }
    }
    Stop-Install ("found no Python 3.10 or newer. Install one (https://www.python.org, or " +
        "winget install Python.Python.3.12) and run this again, or name one with --python PATH.")
}

function Test-Healthy([string]$Env) {
    if (-not (Test-Path (Join-Path $Env $Complete))) { return $false }
    try {
        & (Join-Path $Env 'Scripts\sketchfill.exe') --version *> $null
        return $LASTEXITCODE -eq 0
    } catch {
        return $false
    }
}

# What the engine environment is built from: the package's files and pyproject.toml (its
# version among them). An environment built from other sources is rebuilt; one built from
# these is kept.
function Get-SourceFingerprint {
    $files = @(Get-Item (Join-Path $Repo 'pyproject.toml'))
    foreach ($folder in 'engine', 'plugin_gimp', 'plugin_krita') {
        $files += Get-ChildItem -Recurse -File (Join-Path $Repo $folder) |
            Where-Object { $_.Extension -ne '.pyc' -and $_.FullName -notmatch '__pycache__' }
    }
    $lines = $files | Sort-Object FullName | ForEach-Object {
        $_.FullName.Substring($Repo.Length) + ' ' + (Get-FileHash -Algorithm SHA256 $_.FullName).Hash
    }
    $bytes = [Text.Encoding]::UTF8.GetBytes(($lines -join "`n"))
    $sha = [Security.Cryptography.SHA256]::Create()
    return ([BitConverter]::ToString($sha.ComputeHash($bytes)) -replace '-', '')
}

# Healthy and built from these sources: nothing to rebuild.
function Test-Current([string]$Env) {
    if (-not (Test-Healthy $Env)) { return $false }
    $built = (Get-Content -Raw (Join-Path $Env $Complete)).Trim()
    return $built -eq (Get-SourceFingerprint)
}

function Restore-Venv {
    # A run killed while replacing the environment: keep whichever one is complete.
    if (-not (Test-Path $Previous)) { return }
    if (Test-Path (Join-Path $Venv $Complete)) {
        Remove-Item -Recurse -Force $Previous
    } else {
        if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
        Move-Item $Previous $Venv
        Write-Output 'Restored the engine environment that an interrupted run had moved aside.'
    }
}

$Scratch = Join-Path ([IO.Path]::GetTempPath()) ('sketchfill-install-' + [guid]::NewGuid().ToString('N'))
$Replacing = $false
$DataExisted = Test-Path $Data

function New-EngineVenv([string]$Path) {
    # pip builds from a copy, so the checkout is never written to (and no stale build\
    # folder in it can leak old files into the package).
    $src = Join-Path $Scratch 'src'
    if (-not (Test-Path $src)) {
        New-Item -ItemType Directory -Force $src | Out-Null
        Copy-Item (Join-Path $Repo 'pyproject.toml'), (Join-Path $Repo 'README.md') $src
        foreach ($folder in 'engine', 'plugin_gimp', 'plugin_krita') {
            Copy-Item -Recurse (Join-Path $Repo $folder) (Join-Path $src $folder)
        }
    }
    Write-Output "Creating the engine environment $Path with $script:Py"
    Invoke-Checked $script:Py @('-m', 'venv', $Path)
    Write-Output 'Installing SketchFill and its dependencies into it'
    $pip = @('-m', 'pip', 'install', '--disable-pip-version-check', '--quiet') + $PipLinks + @($src)
    Invoke-Checked (Join-Path $Path 'Scripts\python.exe') $pip
}

function Invoke-InstallPlugins([string]$Env, [string[]]$Extra) {
    $argv = @('install-plugins', '--engine-venv', $Venv, '--models', (Join-Path $Repo 'models')) + $Extra + $Pass
    Invoke-Checked (Join-Path $Env 'Scripts\sketchfill.exe') $argv
}

# Virtual environments are not relocatable (their scripts name their own path), so the
# new one cannot be built elsewhere and renamed into place. Instead the old one is moved
# aside, the new one built at the final path, and the old one put back if anything fails.
function Install-All([string[]]$Extra) {
    $script:Replacing = $true
    if (Test-Path $Venv) {
        try {
            Move-Item $Venv $Previous
        } catch {
            Stop-Install ("cannot move $Venv aside ($_): the engine is probably running. Close " +
                'GIMP and Krita, end sketchfill.exe in the Task Manager, and run this again.')
        }
    }
    New-Item -ItemType Directory -Force $Data | Out-Null
    New-EngineVenv $Venv
    Invoke-InstallPlugins $Venv $Extra
    Set-Content -NoNewline -Path (Join-Path $Venv $Complete) -Value (Get-SourceFingerprint)
    $script:Replacing = $false
    if (Test-Path $Previous) { Remove-Item -Recurse -Force $Previous }
}

$failed = $false
try {
    New-Item -ItemType Directory -Force $Scratch | Out-Null
    $script:Py = Find-Python

    if ($DryRun) {
        # A throwaway environment runs the plan, so the real one is not touched.
        if (Test-Path $Previous) { Write-Output "An interrupted run left ${Previous}: the next run tidies it up." }
        $current = Test-Current $Venv
        $throwaway = $Venv
        if (-not $current) {
            $throwaway = Join-Path $Scratch 'venv'
            New-EngineVenv $throwaway
        }
        if ($Mode -eq 'install' -and $current) { Write-Output "Would keep the engine environment $Venv (healthy, built from these sources)" }
        elseif ($Mode -eq 'install') { Write-Output "Would (re)create the engine environment $Venv" }
        if ($Mode -eq 'repair') { Write-Output "Would rebuild the engine environment $Venv" }
        if ($Mode -ne 'uninstall' -or (Test-Path (Join-Path $Data 'install-manifest.json'))) {
            $flags = @('--dry-run')
            if ($Mode -ne 'install') { $flags += "--$Mode" }
            Invoke-InstallPlugins $throwaway $flags
        }
        if ($Mode -eq 'uninstall') { Write-Output "Would remove the engine environment $Venv" }
    } else {
        Restore-Venv
        if ($Mode -eq 'install') {
            if (Test-Current $Venv) {
                Write-Output "Keeping the engine environment ${Venv}: healthy and built from these sources (--repair rebuilds it)"
                Invoke-InstallPlugins $Venv @()
            } else {
                if (Test-Healthy $Venv) {
                    Write-Output "The engine environment $Venv was built from other sources (another version): rebuilding it"
                } elseif (Test-Path $Venv) {
                    Write-Output "The engine environment $Venv is broken: rebuilding it"
                }
                Install-All @()
            }
            Write-Output "SketchFill is installed. The engine: $Venv\Scripts\sketchfill.exe"
        } elseif ($Mode -eq 'repair') {
            Write-Output "Rebuilding the engine environment $Venv"
            Install-All @('--repair')
        } else {
            if (Test-Path (Join-Path $Data 'install-manifest.json')) {
                $engine = $Venv
                if (-not (Test-Healthy $Venv)) {
                    $engine = Join-Path $Scratch 'venv'
                    New-EngineVenv $engine
                }
                Invoke-Checked (Join-Path $engine 'Scripts\sketchfill.exe') (@('install-plugins', '--uninstall') + $Pass)
            } else {
                Write-Output "No plug-ins were installed by this installer (no $Data\install-manifest.json)."
            }
            foreach ($folder in $Venv, $Previous) {
                if (Test-Path $folder) { Remove-Item -Recurse -Force $folder }
            }
            if ((Test-Path $Data) -and -not (Get-ChildItem -Force $Data)) { Remove-Item $Data }
            Write-Output ("Removed the engine environment $Venv. Downloaded pyzmq wheels stay in " +
                "$Data\cache.")
        }
    }
} catch {
    $failed = $true
    Write-Error -ErrorAction Continue $_
} finally {
    if ($Replacing) {
        if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv -ErrorAction Continue }
        if (Test-Path $Previous) { Move-Item $Previous $Venv }
        if (-not $DataExisted -and (Test-Path $Data) -and -not (Get-ChildItem -Force $Data)) {
            Remove-Item $Data
        }
        [Console]::Error.WriteLine(
            "`nSketchFill was not installed, and nothing was changed: the engine environment " +
            "and the plug-ins are as they were before. Fix the cause above and run install.ps1 again.")
    }
    if (Test-Path $Scratch) { Remove-Item -Recurse -Force $Scratch -ErrorAction Continue }
}
if ($failed) { exit 1 }
exit 0
