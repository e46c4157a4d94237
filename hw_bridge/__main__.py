"""`python -m hw_bridge serve|estop|status|keygen ...`, the same as `agent bridge ...`."""

from hw_bridge.cli import main

raise SystemExit(main())
