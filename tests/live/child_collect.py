"""A collector process for the kill -9 test: ``python -m tests.live.child_collect DB_URL REST_URL WS_PUBLIC WS_BUSINESS``.

Runs the two test pairs with the test timings until killed.
"""

from __future__ import annotations

import asyncio
import sys

from collectors.live.app import Endpoints, run_collectors
from collectors.storage.engine import make_engine
from tests.live.sim_run import FAST, live_config


def main(argv: list[str]) -> None:
    db_url, rest, public, business = argv
    db = make_engine(db_url)
    endpoints = Endpoints(rest_url=rest, ws_public_url=public, ws_business_url=business)
    asyncio.run(
        run_collectors(config=live_config(), db=db, endpoints=endpoints, options=FAST, collector_id="child")
    )


if __name__ == "__main__":
    main(sys.argv[1:])
