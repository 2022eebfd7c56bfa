# Shared by run.sh and test.sh: apt packages and the project's virtual environment.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${GPU_TRAY_VENV:-$ROOT/.venv}

# What the app needs at run time on Debian/Ubuntu: Python, and the libraries
# Qt's xcb platform plugin loads.
RUNTIME_APT="python3 python3-venv python3-pip ca-certificates \
 libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 \
 libegl1 libgl1 libfontconfig1 libdbus-1-3 fonts-dejavu-core openssh-client"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "gpu-tray: need root (or sudo) to install: $*" >&2; return 1; fi
}

apt_install() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "Installing Debian packages:$missing"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

make_venv() {
    # $1: the pip extras, e.g. "" or "[test,bench]"
    if [ ! -x "$VENV/bin/python" ]; then
        /usr/bin/python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT$1"
}
