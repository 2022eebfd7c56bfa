import sys

from gpu_tray.cli.main import main

sys.exit(main())
