"""Golden runs: pinned outputs of a few fixed runs, so behaviour never changes by accident.

``cases.py`` defines the runs and how their outputs are pinned and compared; ``update.py``
re-pins them after a deliberate change (see ``docs/golden.md``).
"""
