"""FAB's SQLAInterface for uuid-keyed tenant tables.

A malformed id (``/show/123``, ``/api/.../abc``) is answered like a missing one:
``get`` returns ``None`` (FAB turns that into 404) instead of letting PostgreSQL
raise "invalid input syntax for type uuid" as a 500.

The key is the mapper's (``id``), not the table's ``(tenant_id, id)``: ``tenant_id``
is set by the database from the bound tenant and never a form or API field.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask_appbuilder.models.sqla.interface import SQLAInterface


class UUIDSQLAInterface(SQLAInterface):
    def get(self, id: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            key = uuid.UUID(str(id))
        except (TypeError, ValueError):
            return None
        return super().get(key, *args, **kwargs)

    def is_pk(self, col_name: str) -> bool:
        return any(column.key == col_name for column in self.obj.__mapper__.primary_key)
