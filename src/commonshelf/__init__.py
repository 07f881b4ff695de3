"""Commonshelf: app recipes, a CI that vets them, a signed catalogue, an agent that applies it."""

__version__ = "0.1.0"
