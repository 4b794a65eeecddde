"""Exchange adapters behind one async protocol (see base.py)."""
