"""The real trivy's Dockerfile checks, judged by the shelf's policy: a Dockerfile that runs
as root blocks, naming the check and the file; custom-html's own image folder passes."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from commonshelf.ci.misconfig import dockerfile_findings
from commonshelf.ci.scan_policy import judge, load_policy, policy_path
from commonshelf.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(policy_path(REPO))


def test_a_dockerfile_that_runs_as_root_blocks(tmp_path: Path) -> None:
    folder = tmp_path / "recipes" / "custom-html"
    shutil.copytree(REPO / "recipes" / "custom-html", folder)
    dockerfile = folder / "image" / "Dockerfile"
    text = dockerfile.read_text()
    assert "\nUSER www-data\n" in text
    dockerfile.write_text(text.replace("\nUSER www-data\n", "\n"))
    found = dockerfile_findings(load_recipe(folder), tmp_path / "cache")
    root = [f for f in found if f.id == "DS-0002"]
    assert [(f.severity, f.path, f.source) for f in root] == [
        ("HIGH", "image/Dockerfile", "dockerfile")
    ]
    verdict = judge(found, POLICY, (), dt.date.today())
    assert [b.finding.id for b in verdict.blocking] == ["DS-0002"]
    assert verdict.blocking[0].reason.startswith("DS-0002 (HIGH) in image/Dockerfile: ")


def test_custom_htmls_image_folder_passes_the_policy(tmp_path: Path) -> None:
    found = dockerfile_findings(load_recipe(REPO / "recipes" / "custom-html"), tmp_path)
    assert {f.id for f in found} == {"DS-0026", "DS-0029"}  # no HEALTHCHECK; apt recommends
    verdict = judge(found, POLICY, (), dt.date.today())
    assert verdict.passed
    assert [f.id for f, _ in verdict.excepted] == ["DS-0029"]  # the base image turns them off
    assert [(f.id, f.severity) for f in verdict.allowed] == [("DS-0026", "LOW")]
