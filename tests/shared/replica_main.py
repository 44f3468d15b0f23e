"""One replica in its own process, for the multi-process test.

Usage: python -m tests.shared.replica_main URL DEPLOYMENT NAME REPLICAS EJECT_FLAG_FILE ROLE
ROLE ``ejector`` ejects ``paid`` once the flag file appears; ``follower`` reports how long
after the flag's timestamp it stopped routing to ``paid``. Prints one JSON line at the end.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mangaroute import Router
from mangaroute.core.snapshot import RouterEvent, SwitchEvent
from mangaroute.shared import SharedSettings, SharedState
from tests.shared.helpers import fleet_config


def main() -> int:
    url, deployment, name, replicas, flag, role = sys.argv[1:7]
    router = Router(fleet_config())
    switches: list[RouterEvent] = []
    router.subscribe(lambda e: switches.append(e) if isinstance(e, SwitchEvent) else None)
    settings = SharedSettings(
        url=url, deployment=deployment, replica_id=name, sync_interval_ms=100, timeout_ms=200
    )
    result: dict[str, object] = {"replica": name}
    with SharedState(router, settings):
        deadline = time.monotonic() + 20
        while (router.fleet is None or router.fleet.replicas < int(replicas)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        print("ready", flush=True)
        flag_path = Path(flag)
        while not flag_path.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        flagged_at = float(flag_path.read_text() or "0") if flag_path.exists() else 0.0
        if role == "ejector":
            router.eject("paid", "AccessDeniedException")
            result["ejected_at"] = time.time()
        while time.monotonic() < deadline:
            decision = router.choose("chat")
            router.release(decision)
            if decision.target.name != "paid":
                result["avoided_after_ms"] = (time.time() - flagged_at) * 1000
                break
            time.sleep(0.0005)
        time.sleep(0.6)  # let the switch settle everywhere
        result["primary"] = router.primary
        result["switch_events"] = len(switches)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
