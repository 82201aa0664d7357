"""Per-site parsers: one ``Site`` per module, named in a crawl config."""
