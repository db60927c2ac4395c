"""Derived tables computed from the records of a run (aggregates, sanity checks)."""
