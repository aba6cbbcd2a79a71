"""Database plumbing: model base, per-transaction tenant binding, advisory locks."""
