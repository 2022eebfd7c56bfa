import sys

from gpu_tray.cli import main

sys.exit(main())
