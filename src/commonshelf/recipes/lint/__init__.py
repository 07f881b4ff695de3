"""Recipe linter: numbered rules, each a registered function with a severity and a fix.

Every rule is explained in docs/packaging.md (its table is `rules_markdown()`). A
finding names the rule, the file and (where one applies) the line. The rules live
by subject: `manifest`, `compose`, `security`, `files`, `shelf` (across recipes)
and `external` (`docker stack config`, trivy's secret scan; `external=False` skips
them); `registry` defines `Rule` and the `@rule` decorator, `engine` runs them.
"""

from __future__ import annotations

from commonshelf.recipes.lint.context import recipe_folders
from commonshelf.recipes.lint.docs import rules_markdown, update_rules_doc
from commonshelf.recipes.lint.engine import RULES, lint_recipe, lint_shelf, lint_shelf_by_recipe
from commonshelf.recipes.lint.registry import Finding, Hit, Rule, rule

__all__ = [
    "RULES",
    "Finding",
    "Hit",
    "Rule",
    "lint_recipe",
    "lint_shelf",
    "lint_shelf_by_recipe",
    "recipe_folders",
    "rule",
    "rules_markdown",
    "update_rules_doc",
]
