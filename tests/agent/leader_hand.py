"""The human hand's stand-in on a leader arm, as its own process (so the recording process's
GIL never starves this client's heartbeats): `python leader_hand.py LEADER FOLLOWER OUT.npy`.

Waits until the follower's server has accepted a command (the recording runs; asked with
`status`, which needs no session), then moves the leader along a closed loop (16 x 16 x 5 cm,
a half turn of yaw and back) in STEPS ticks at 20 Hz, closes its gripper half way, holds 20
ticks, and saves the leader's observed tool position and gripper opening per tick to OUT.npy.
Prints READY once connected.
"""

import sys
import time

import numpy as np

from hw_bridge.client import BridgeClient
from hw_bridge.errors import Rejected
from hw_bridge.kinematics import make_kinematics
from sims.base import quat_from_axis_angle, quat_mul

STEPS, HOLD = 60, 20

if __name__ == "__main__":
    leader, follower, out = sys.argv[1:4]
    hand = BridgeClient(leader)
    hand.connect()
    kin = make_kinematics(hand.info["robot"]["kinematics"])
    start = hand.observation()["state"].astype(float)
    q, p0, quat0 = start[:6], start[6:9], start[9:13]
    watch = BridgeClient(follower)
    watch.open()
    print("READY", flush=True)
    give_up = time.monotonic() + 120
    while watch.status()["mode"] != "active":
        if time.monotonic() > give_up:
            sys.exit("the follower never became active")
        time.sleep(0.01)
    path = []
    for i in range(STEPS + HOLD):
        state = hand.observation()["state"]
        path.append(np.concatenate([state[6:9], state[-1:]]).astype(float))
        w = 2 * np.pi * min(i, STEPS) / STEPS
        pos = p0 + np.array([0.08 * np.sin(w), 0.08 * (1 - np.cos(w)), 0.05 * np.sin(w / 2)])
        quat = quat_mul(quat_from_axis_angle(np.array([0, 0, 0.5 * np.sin(w / 2)])), quat0)
        try:
            q = np.array(hand.command(kin.solve_ik(pos, quat, q), 1.0 if i > STEPS // 2
                                      else 0.0)["q"])
        except Rejected as exc:
            # A starved process (loaded machine) may deliver a command late (expired: it did
            # not run) or lose its session to the watchdog (the leader holds, as it should;
            # say hello again). Either way the hand goes on.
            if exc.code == "unknown_session":
                hand.connect()
            elif exc.code != "expired":
                raise
        time.sleep(0.05)
    np.save(out, np.array(path))
    hand.close()
    watch.close()
