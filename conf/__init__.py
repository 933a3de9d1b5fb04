"""Typed configuration read from the environment (one module for every process)."""
