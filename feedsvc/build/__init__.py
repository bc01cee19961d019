"""One build = scan → ledger → plan → write, each stage a module with its own input and output.

``scan`` reads seeds (never writes); ``ledger`` applies the results to the store (ids for
life, renames, duplicates, feed membership); ``plan`` settles the byte budget and the RFC 5005
archive places and lists the documents to write; ``outputs`` writes them into feeds/ and
nothing else. After *plan* nothing writes the store, except ``Publisher`` recording the
manifest of the files written (one named step, ``record_outputs``). ``feeds`` says which feeds
exist, ``fingerprints`` what must be redone when a setting changes, ``adopt`` reads the ids
feeds/ already published for a new store.
"""
