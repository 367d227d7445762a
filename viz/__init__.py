"""The interactive Solara policy lab (``viz/app.py``), served by ``nplsim viz``."""
