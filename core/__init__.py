"""Shared infrastructure every Gatehouse app builds on; it imports no app."""
