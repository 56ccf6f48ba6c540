"""The frozen build's entry script: the ``tillgate`` console command and nothing else.

Every verb, ``demo``'s child processes too (they re-run this executable with verb
arguments), goes through the same ``entry()`` as ``pip install``'s console script.
"""

from tillgate.cli import entry

if __name__ == "__main__":
    entry()
