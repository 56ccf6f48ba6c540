"""tillgate's shared kernel: what the till and head office both stand on.

Errors, money, card numbers, the clock, logging, serving HTTP, config and device models,
the cards CSV, the pure rules engine and the points lots. It imports no other package of
the project.
"""

__version__ = "0.1.0"
