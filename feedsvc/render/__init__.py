"""Pure, deterministic bytes from articles: no clock, no I/O, no globals.

``feeds`` (Atom 1.0 and RSS 2.0 via feedgen), ``jsonfeed`` (JSON Feed 1.1) and ``pages`` (the
HTML index and article pages, Jinja2). Every date comes from the data, so the same articles
always give the same bytes. Nothing here imports the build, the store or the service.
"""
