<#
.SYNOPSIS
Build the frozen tillgate on Windows (PyInstaller): tillgate.exe and its _internal folder,
no Python needed on the till.

.DESCRIPTION
The Windows twin of build/build.sh, written to match it but NOT TESTED: it has only been
read, never run (the project's CI builds on Linux). Check the bundle on a Windows machine
before shipping it: tillgate.exe --version, tillgate.exe decode on a sample,
tillgate.exe demo --out %TEMP%\tillgate-demo (on Windows the demo uses the POS API only:
there are no ptys).

PyInstaller's work and dist folders go outside the source tree (never into build\). The
last line of output is the path of tillgate.exe. Installing it: docs/install.md.

.PARAMETER Out
Where PyInstaller works and puts the bundle; must be outside the source tree.
Default: $env:TILLGATE_BUILD_DIR, else %LOCALAPPDATA%\tillgate-build.

.PARAMETER OneFile
One self-unpacking tillgate.exe instead of the onedir folder (slower to start).

.PARAMETER Python
Build with this interpreter's environment (it gets '.[build]' installed). Default: a build
venv in OUT\venv, made with the Python launcher (py -3.11) on first use.

.PARAMETER NoInstall
Do not install '.[build]' first (the environment already has it).

.EXAMPLE
powershell -ExecutionPolicy Bypass -File build\build.ps1 -Out C:\tillgate-build
#>
[CmdletBinding()]
param(
    [string]$Out = $(if ($env:TILLGATE_BUILD_DIR) { $env:TILLGATE_BUILD_DIR } else { Join-Path $env:LOCALAPPDATA "tillgate-build" }),
    [switch]$OneFile,
    [string]$Python = "",
    [switch]$NoInstall
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path.TrimEnd("\")
$OutFull = [System.IO.Path]::GetFullPath($Out).TrimEnd("\")
if (($OutFull + "\").StartsWith($Root + "\", [System.StringComparison]::OrdinalIgnoreCase)) {
    Write-Error ("build.ps1: -Out $OutFull is inside the source tree $Root; PyInstaller's " +
        "work and dist folders must be outside it (build\ holds the spec and scripts, never " +
        "build output). Use e.g. -Out C:\tillgate-build")
    exit 2
}

if (-not $Python) {
    $venv = Join-Path $OutFull "venv"
    $Python = Join-Path $venv "Scripts\python.exe"
    if (-not (Test-Path $Python)) {
        Write-Host "build.ps1: making the build venv $venv"
        New-Item -ItemType Directory -Force -Path $OutFull | Out-Null
        & py -3.11 -m venv $venv
        if ($LASTEXITCODE -ne 0) { throw "build.ps1: could not make a venv with 'py -3.11'; install Python 3.11 or pass -Python" }
    }
}

if (-not $NoInstall) {
    Write-Host "build.ps1: installing '.[build]' (editable: nothing is built inside the tree)"
    & $Python -m pip install --quiet --disable-pip-version-check -e "$Root[build]"
    if ($LASTEXITCODE -ne 0) { throw "build.ps1: pip install failed" }
}

if ($OneFile) {
    $work = Join-Path $OutFull "work-onefile"
    $dist = Join-Path $OutFull "dist-onefile"
    $specArgs = @("--", "--onefile")
    $exe = Join-Path $dist "tillgate.exe"
} else {
    $work = Join-Path $OutFull "work"
    $dist = Join-Path $OutFull "dist"
    $specArgs = @()
    $exe = Join-Path $dist "tillgate\tillgate.exe"
}

Write-Host "build.ps1: PyInstaller, work in $work, bundle in $dist"
$env:PYTHONDONTWRITEBYTECODE = "1"  # no .pyc in the tree from the spec's own imports
& $Python -m PyInstaller --noconfirm --clean --log-level WARN `
    --workpath $work --distpath $dist (Join-Path $Root "build\tillgate.spec") @specArgs
if ($LASTEXITCODE -ne 0) { throw "build.ps1: PyInstaller failed" }
if (-not (Test-Path $exe)) { throw "build.ps1: PyInstaller finished but $exe is missing" }

if ($OneFile) {
    Write-Host "build.ps1: built $exe (one file)"
} else {
    Write-Host "build.ps1: built $(Split-Path $exe) - copy the whole folder to C:\Program Files\tillgate"
}
Write-Output $exe
