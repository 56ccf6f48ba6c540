"""tillgate agent: the till daemon."""
