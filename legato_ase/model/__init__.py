"""The Allegro network and the potential built on it."""

from .potential import LegatoPotential

__all__ = ["LegatoPotential"]
