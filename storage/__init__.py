"""SQLite persistence through sqlite-utils: schema, migrations, repositories."""

from storage.db import SaveStateFailure, StorageError, open_database
from storage.store import Store, StoredAlert

__all__ = ["SaveStateFailure", "StorageError", "Store", "StoredAlert", "open_database"]
