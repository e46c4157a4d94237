"""A client process that keeps the arm moving until it is killed: `python mover.py ENDPOINT`."""

import sys
import time

import numpy as np

from hw_bridge.client import BridgeClient
from hw_bridge.errors import Rejected

if __name__ == "__main__":
    client = BridgeClient(sys.argv[1])
    client.connect(subscribe=False)
    home = np.array(client.info["robot"]["home"])
    for i in range(100_000):
        target = home + np.array([0.3 * np.sin(i * 0.3), 0.1 * np.sin(i * 0.2), 0, 0, 0, 0])
        try:
            client.command(target, 0.0)
        except Rejected as exc:
            # A loaded machine may deliver a command past its deadline, or starve this
            # process past the 100 ms watchdog, which ends the session (the arm holds, as it
            # should); this client's job is only to keep the arm moving until it is killed.
            if exc.code == "unknown_session":
                client.connect(subscribe=False)
            elif exc.code != "expired":
                raise
        if i == 5:
            print("MOVING", flush=True)
        time.sleep(0.05)
