"""`python -m hw_bridge serve|estop|status|keygen ...`, the same as `agent bridge ...`."""

from agent.commands.bridge import main

raise SystemExit(main())
