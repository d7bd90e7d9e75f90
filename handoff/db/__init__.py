"""The gateway database: its schema and migrations (:mod:`handoff.db.schema`)."""
