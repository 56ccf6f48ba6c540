"""The POS API: the local HTTP interface POS software calls around every sale."""
