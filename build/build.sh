#!/usr/bin/env bash
# Build the frozen tillgate (PyInstaller) on Linux or macOS: a folder with the `tillgate`
# executable and everything it needs, no Python required on the till.
#
#   build/build.sh [--out DIR] [--onefile] [--python PY] [--no-install]
#
#   --out DIR     where PyInstaller works and puts the bundle; must be outside the source
#                 tree (default: $TILLGATE_BUILD_DIR, else ~/.cache/tillgate-build)
#   --onefile     one self-unpacking executable instead of the onedir folder (slower start)
#   --python PY   build with this interpreter's environment (e.g. .venv/bin/python; it gets
#                 '.[build]' installed); default: a build venv in DIR/venv, made on first use
#   --no-install  do not install '.[build]' first (the environment already has it)
#
# The last line on stdout is the path of the executable (DIR/dist/tillgate/tillgate, or
# DIR/dist-onefile/tillgate); everything else goes to stderr. Check the bundle with
# build/smoke.sh. Installing it on a till: docs/install.md.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
out=${TILLGATE_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tillgate-build}
onefile=0
python=""
install=1

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }
fail() { echo "build.sh: $1" >&2; exit "${2:-1}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || fail "--out needs a directory" 2; out=$2; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        --onefile) onefile=1; shift ;;
        --python) [ $# -ge 2 ] || fail "--python needs an interpreter" 2; python=$2; shift 2 ;;
        --python=*) python=${1#--python=}; shift ;;
        --no-install) install=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) fail "unknown option '$1' (see build/build.sh --help)" 2 ;;
    esac
done
[ -n "$out" ] || fail "--out is empty" 2

# The output directory, absolute and with symlinks resolved (it need not exist yet), so
# that a path that only looks outside the tree (a symlink into it, ../) is caught too.
resolve() {
    local dir=$1 rest=""
    case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
    while [ ! -d "$dir" ]; do
        rest="/$(basename "$dir")$rest"
        dir=$(dirname "$dir")
    done
    echo "$(cd "$dir" && pwd -P)$rest"
}
out=$(resolve "$out")
case "$out/" in
    "$root"/*)
        fail "--out $out is inside the source tree $root; PyInstaller's work and dist folders must be outside it (build/ holds the spec and scripts, never build output). Use e.g. --out ~/.cache/tillgate-build" 2
        ;;
esac

# PyInstaller's own tools on Linux: ldd finds libraries, objdump and objcopy (binutils)
# classify them and write the executable.
if [ "$(uname -s)" = Linux ]; then
    for tool in ldd objdump objcopy; do
        command -v "$tool" >/dev/null 2>&1 \
            || fail "PyInstaller needs $tool: install binutils (Debian: apt-get install binutils)"
    done
fi

if [ -z "$python" ]; then
    if [ ! -x "$out/venv/bin/python" ]; then
        base=$(command -v python3.11 || command -v python3 || true)
        [ -n "$base" ] || fail "no python3.11 or python3 found to make the build venv; pass --python"
        echo "build.sh: making the build venv $out/venv with $base" >&2
        mkdir -p "$out"
        "$base" -m venv "$out/venv"
    fi
    python=$out/venv/bin/python
fi
command -v "$python" >/dev/null 2>&1 || fail "$python: no such interpreter"

# An editable install: a regular one would build the wheel in the tree (setuptools' build/lib).
if [ "$install" = 1 ]; then
    echo "build.sh: installing '.[build]' into $("$python" -c 'import sys; print(sys.prefix)')" >&2
    "$python" -m pip install --quiet --disable-pip-version-check -e "$root[build]" >&2
fi

if [ "$onefile" = 1 ]; then
    work=$out/work-onefile dist=$out/dist-onefile spec_args=(-- --onefile)
    exe=$dist/tillgate
else
    work=$out/work dist=$out/dist spec_args=()
    exe=$dist/tillgate/tillgate
fi
echo "build.sh: PyInstaller, work in $work, bundle in $dist" >&2
# No .pyc files in the tree from the spec's own imports.
PYTHONDONTWRITEBYTECODE=1 "$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath "$work" --distpath "$dist" "$root/build/tillgate.spec" ${spec_args[@]+"${spec_args[@]}"} >&2
[ -x "$exe" ] || fail "PyInstaller finished but $exe is missing"
if [ "$onefile" = 1 ]; then
    echo "build.sh: built $exe (one file, $(du -sh "$exe" | cut -f1))" >&2
else
    echo "build.sh: built $(dirname "$exe") ($(du -sh "$(dirname "$exe")" | cut -f1)); copy the whole folder" >&2
fi
echo "$exe"
