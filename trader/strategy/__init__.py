"""Signal strategies and the dual-ATR regime engine."""
