"""The content digest a document is served with (its ``ETag``), on every host alike."""

from __future__ import annotations

import hashlib

DIGEST_CHARS = 32  # of sha256's hex: 128 bits, as many as a strong validator needs


def content_digest(data: bytes) -> str:
    """The ETag value (without quotes) of a document with these bytes."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
