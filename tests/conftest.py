"""Suite-wide settings. Real daemons (sshd, keyring, desktop, engines) are started
by the fixtures in tests/harness/ for the tests that need them."""

from __future__ import annotations

import os

# Before anything imports Qt: widget unit tests render offscreen. Tests of the
# real desktop start their own Xvfb and run the app as a separate process.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Date axes and heatmaps use local time: pin it so expectations hold everywhere.
os.environ["TZ"] = "UTC"
if hasattr(os, "tzset"):
    os.tzset()
