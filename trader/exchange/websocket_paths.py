"""Which URL layout a websocket server speaks, learnt by connecting: the layouts of one
stream in order of preference, the answers that move it to the next one, and the layout
that worked, kept for the reconnects.

Binance moved its USD-M streams to routed paths (/public, /market, /private) while some of
its pages, and servers such as an older testnet, still know only the unrouted ones
(binance_streams.py and binance_user_stream.py cite the pages). The failure to avoid is a
silent one: a wrong path that accepts the handshake and never delivers anything (Binance's
retired legacy paths did exactly that). So only a clear refusal moves a stream to a less
preferred layout, and a layout that has worked is not given up for a less preferred one.
"""

from enum import Enum

from loguru import logger

ROUTED, LEGACY = "routed", "legacy"
REFUSED_STATUSES = frozenset({400, 404})   # a handshake answered so: the path is not served
CLOSES_AT_ONCE_TO_REFUSE = 2


class PathOutcome(Enum):
    """What one connection attempt says about the layout it used."""
    WORKED = "worked"                  # a message arrived, or the socket outlived the probe
    REFUSED = "refused"                # HTTP 400 / 404 on the upgrade
    CLOSED_AT_ONCE = "closed at once"  # accepted, then closed by the server before any
    #                                    message, within StreamOptions.refused_within_seconds
    FAILED = "failed"                  # anything else (503, timeout, reset): says nothing


class PathChooser:
    """The layouts of one stream, most preferred first; `current` is the one to connect on.

        paths = PathChooser("user-data", (ROUTED, LEGACY))
        url = url_for(paths.current)
        at_once = paths.record(PathOutcome.REFUSED, "HTTP 404")   # now LEGACY, True

    - REFUSED moves to the next layout (after the last, back to the first), except away
      from the preferred layout once it has worked: there it is a passing fault.
    - CLOSED_AT_ONCE moves on only while no layout has worked yet, and only the
      CLOSES_AT_ONCE_TO_REFUSE-th in a row: one drop right after connecting is a fault,
      a server that does not know the path closes every time.
    - WORKED remembers the layout; the choice is logged once per change.
    `record` returns True when it moved to a less preferred layout, one not tried in this
    round: worth connecting at once, without backoff. Moving back to the first layout
    returns False (wait the backoff), so two refusing layouts cannot spin.
    """

    def __init__(self, stream: str, layouts: tuple[str, ...]) -> None:
        if not layouts:
            raise ValueError("a stream needs at least one URL layout")
        self.stream, self.layouts = stream, layouts
        self.remembered: str | None = None
        self._index = 0
        self._closes_at_once = 0

    @property
    def current(self) -> str:
        return self.layouts[self._index]

    @property
    def preferred(self) -> str:
        return self.layouts[0]

    def record(self, outcome: PathOutcome, detail: str = "") -> bool:
        """Learn from one attempt on `current`; True: connect again at once (see class)."""
        if outcome is not PathOutcome.CLOSED_AT_ONCE:
            self._closes_at_once = 0
        if outcome is PathOutcome.WORKED:
            self._remember()
            return False
        if outcome is PathOutcome.REFUSED:
            if self.current == self.preferred == self.remembered:
                return False
            return self._move_on(f"refused ({detail})")
        if outcome is PathOutcome.CLOSED_AT_ONCE and self.remembered is None:
            self._closes_at_once += 1
            if self._closes_at_once >= CLOSES_AT_ONCE_TO_REFUSE:
                self._closes_at_once = 0
                return self._move_on(f"closed at once {CLOSES_AT_ONCE_TO_REFUSE} times "
                                     f"without a message ({detail})")
        return False

    def reprobe(self, why: str) -> None:
        """Try the preferred layout again on the next connection (a less preferred one
        went quiet, which is how a path the server no longer serves can look)."""
        if self._index == 0:
            return
        logger.warning("stream={} {} path {}, trying the {} path again", self.stream,
                       self.current, why, self.preferred)
        self._index = 0
        self.remembered = None

    def _move_on(self, why: str) -> bool:
        refused = self.current
        self._index = (self._index + 1) % len(self.layouts)
        if self.remembered == refused:
            self.remembered = None
        logger.warning("stream={} {} path {}, trying the {} path", self.stream, refused,
                       why, self.current)
        return self._index != 0

    def _remember(self) -> None:
        if self.remembered == self.current:
            return
        self.remembered = self.current
        logger.info("stream={} using the {} path", self.stream, self.current)
