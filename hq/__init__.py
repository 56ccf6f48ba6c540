"""tillgate head office: the server every till of a chain syncs with, and its admin verbs."""
