"""Where head office listens unless told, and the file it keeps its admin token in.

Both ``tillgate hq serve`` and the admin verbs (``tillgate hq cards import`` …) read these.
They live here, not in :mod:`.server`, so that a verb does not import the server and its
web framework to find them: that was 0.5 s of every verb's 0.7 s.
"""

from __future__ import annotations

ADMIN_TOKEN_FILE = "hq-admin.token"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8700
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
