"""The interactive Solara policy lab (see viz/app.py)."""
