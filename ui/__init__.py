"""Templates and static files of bakestore's thin web UI, installed as ``bakestore.ui``."""
