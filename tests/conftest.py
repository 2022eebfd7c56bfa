"""Suite-wide settings. Real daemons (sshd, keyring, desktop, engines) are started
by the fixtures in tests/harness/ for the tests that need them."""

from __future__ import annotations

import os
import tempfile

# Before anything imports Qt: widget unit tests render offscreen. Tests of the
# real desktop start their own Xvfb and run the app as a separate process.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Date axes and heatmaps use local time: pin it so expectations hold everywhere.
os.environ["TZ"] = "UTC"
if hasattr(os, "tzset"):
    os.tzset()

# Never read or write the developer's own files: a private home and XDG folders for
# the whole run (config, history, known_hosts, autostart), and no ssh-agent of theirs.
_HOME = tempfile.mkdtemp(prefix="gpu-tray-test-home-")
os.environ["HOME"] = _HOME
for _var, _sub in (
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_CACHE_HOME", ".cache"),
    ("XDG_STATE_HOME", ".local/state"),
):
    os.environ[_var] = os.path.join(_HOME, _sub)
for _var in ("SSH_AUTH_SOCK", "GPU_TRAY_CONFIG"):
    os.environ.pop(_var, None)
