"""Takt: a real-time, collaborative production-scheduling board."""

# Routes declare `{name:id}` path parameters; the convertor must exist before any does.
from app import routing as routing
