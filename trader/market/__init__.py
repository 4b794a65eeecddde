"""Candle feeds (exchange stream or replay), stale-data and gap detection, indicators."""
