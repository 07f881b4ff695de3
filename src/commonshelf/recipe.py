"""What a recipe's tests import, at a path that never moves (see `commonshelf.harness`)."""

from __future__ import annotations

from commonshelf.recipes.model import DataVolume, Main, Recipe, load_recipe

__all__ = ["DataVolume", "Main", "Recipe", "load_recipe"]
