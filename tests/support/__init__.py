"""Helpers shared by test modules and the processes tests start (not fixtures)."""
