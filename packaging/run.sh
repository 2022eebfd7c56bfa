#!/bin/sh
# Install gpu-tray and start it. With no configuration it runs on the built-in
# demo cluster and offers to set up your own hosts.
. "$(dirname "$0")/common.sh"
apt_install $RUNTIME_APT
make_venv ""
exec "$VENV/bin/gpu-tray" "$@"
