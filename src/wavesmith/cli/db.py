"""``wavesmith`` sub-commands of this area (filled in by its owner)."""

from __future__ import annotations


def register(sub) -> None:
    """Add this module's sub-commands to the ``wavesmith`` parser."""
