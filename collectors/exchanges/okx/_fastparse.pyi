"""Type stub of the compiled fast path (``_fastparse.c``); ``fast.new_fast_path`` builds it."""

from decimal import Decimal
from typing import Final

from collectors.exchanges.okx.events import TradesPush
from collectors.model import Side, Trade

MAX_FRAME_LEN: Final[int]

class TradeParser:
    def __init__(
        self,
        *,
        trade_type: type[Trade],
        push_type: type[TradesPush],
        buy: Side,
        sell: Side,
        decimal_type: type[Decimal],
        ts_min_ms: int,
        ts_max_ms: int,
    ) -> None: ...
    def parse(self, text: object, recv_ms: int, /) -> TradesPush | None: ...
