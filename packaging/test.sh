#!/bin/sh
# Install everything the tests need (apt packages included) and run the whole suite.
. "$(dirname "$0")/common.sh"
TEST_APT="openssh-server openssh-client gnome-keyring dbus dbus-x11 xvfb trayer dunst \
 imagemagick xdotool x11-utils nftables iproute2 procps util-linux passwd \
 prometheus slurmctld slurmd slurm-client munge libnss-wrapper \
 xfce4-panel xfconf sway waybar grim xfce4-notifyd notification-daemon \
 libwayland-client0 libwayland-cursor0 libwayland-egl1 fonts-dejavu-core"
apt_install $RUNTIME_APT $TEST_APT
# tests/packaging: appstreamcli validates the AppStream metainfo; pipx installs the wheel.
PACKAGING_APT="appstream pipx"
apt_install $PACKAGING_APT
make_venv "[test,bench]"
cd "$ROOT"
"$VENV/bin/ruff" check .
exec "$VENV/bin/python" -m pytest "$@"
