"""Test doubles for the bridge: a sim driver that records setpoints and fails on demand."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from hw_bridge.drivers.sim import SimDriver
from hw_bridge.errors import DriverFault


class FlakyDriver(SimDriver):
    """The sim arm, plus: every written setpoint is recorded; reads/writes fail on demand."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_read = False
        self.fail_write = False
        self.writes: list[np.ndarray] = []
        self.n_writes = 0
        self.record = threading.Event()
        self.real_arm = False  # True: behave like hardware, no sim-only ground truth

    def snapshot(self):
        snap = super().snapshot()
        return replace(snap, sim_only=None) if self.real_arm else snap

    def read(self):
        if self.fail_read:
            raise DriverFault("injected read failure")
        return super().read()

    def write(self, q: np.ndarray, gripper: float) -> None:
        if self.fail_write:
            raise DriverFault("injected write failure")
        self.n_writes += 1
        if self.record.is_set():
            self.writes.append(np.array(q))
        super().write(q, gripper)
