"""tradebot's trading core: config, domain, exchange adapters, engine and its pure parts."""
