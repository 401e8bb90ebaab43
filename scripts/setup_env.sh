#!/usr/bin/env bash
# Create .venv with torch (CPU, pinned) first and then diascan with its test extras.
# Installs the Debian libraries Qt needs when they are missing and we are root; otherwise names them.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "diascan setup: '$PY' not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2
    exit 2
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "diascan setup: Python 3.11 or newer is required, found $("$PY" --version 2>&1)" >&2
    exit 2
fi

# Shared libraries the PyQt6 wheels load (xcb platform, EGL/GL, fonts, keyboard).
QT_LIBS=(libEGL.so.1 libGL.so.1 libfontconfig.so.1 libxkbcommon.so.0 libxkbcommon-x11.so.0
         libdbus-1.so.3 libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1
         libxcb-shape.so.0 libX11-xcb.so.1)
QT_DEBS="libegl1 libgl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libx11-xcb1 libxcb-image0 \
libxcb-render-util0 libxcb-randr0 libxcb-xinerama0 libglib2.0-0 fonts-dejavu-core"
# ldconfig lives in /sbin, which is not on an ordinary user's PATH on Debian.
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)
known_libs=$("$LDCONFIG" -p 2>/dev/null || true)
missing=()
for lib in "${QT_LIBS[@]}"; do
    grep -qF "$lib" <<<"$known_libs" || missing+=("$lib")
done
need_venv=0
"$PY" -c 'import ensurepip, venv' 2>/dev/null || need_venv=1
if [ ${#missing[@]} -gt 0 ] || [ $need_venv = 1 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "diascan setup: installing Debian packages for Qt and venv (missing: ${missing[*]:-venv})"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        pkgs="$QT_DEBS"
        [ $need_venv = 1 ] && pkgs="$pkgs python3-venv"
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    else
        what="${missing[*]:-}"
        [ $need_venv = 1 ] && what="$what (python3-venv)"
        echo "diascan setup: missing system packages: $what" >&2
        echo "  install them with: sudo apt-get install $QT_DEBS python3-venv" >&2
        exit 2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first and pinned: an open range would pull gigabytes of CUDA packages. The CPU build,
# in this order: a local wheel (pip's find-links; its small dependencies then from the index),
# PyTorch's CPU index, then PyPI (whose Linux wheel is the CUDA build: it works, but is large).
if .venv/bin/python -m pip install -q --no-index --no-deps "torch==2.13.0" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0"
else
    .venv/bin/python -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
        || .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[test]"
touch .venv/.installed
echo "diascan setup: environment ready in .venv"
