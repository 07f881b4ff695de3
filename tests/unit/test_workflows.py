"""Every forge workflow under ci/ runs only commands that exist: `./shelf X`, `invoke X` and
`.venv/bin/invoke X` name tasks of tasks.py's invoke collection (and only their options),
`nox -s X` names a session of noxfile.py, a script path is an executable file of the repository,
and anything else is a tool on the Debian runner named in `SYSTEM`. Each forge's workflow
lints and vets changed recipes on pull requests, releases on main and runs the scheduled
jobs; every secret and variable it reads is documented in ci/README.md."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Collection

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "ci"
FORGES = ("github", "forgejo")

# Tasks a workflow may name before they exist, because another change adds them in parallel.
# Each entry says who adds it; remove it once the task is in tasks.py (the test says when).
PENDING: dict[str, str] = {}

# tools of the self-hosted Debian 12 runner (not of this repository)
SYSTEM = frozenset({"git", "docker", "printf", "echo", "test", "[", "true", "bash"})
# what `./shelf` handles itself before handing over to invoke (see its header)
SHELF_OWN = frozenset({"test", "lint", "--list"})
VENV_TOOLS = frozenset({"invoke", "nox"})
SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "\n"})
KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})


@dataclass(frozen=True)
class Command:
    workflow: str
    job: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.workflow} job {self.job}: {shlex.join(self.words)}"


def workflows() -> list[Path]:
    """Every YAML file under ci/ that is a workflow (it has jobs)."""
    found = [
        path
        for path in sorted([*CI.rglob("*.yml"), *CI.rglob("*.yaml")])
        if isinstance(load(path), dict) and "jobs" in load(path)
    ]
    assert found, "ci/ holds no workflow"
    return found


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """`on:` (YAML 1.1 reads the bare key `on` as True)."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


def simple_commands(script: str) -> Iterator[tuple[str, ...]]:
    """The simple commands of a shell script: words split at `;`, `&&`, `||`, `|` and line
    ends, without comments, shell keywords and leading VAR=value assignments. Good enough for
    the plain scripts a workflow should hold (a test failure says when it is not)."""
    words: list[str] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.commenters = "#"
        for token in [*lexer, "\n"]:
            if token in SEPARATORS:
                if words:
                    yield tuple(words)
                words = []
            elif not words and (token in KEYWORDS or re.fullmatch(r"[A-Za-z_]\w*=.*", token)):
                continue
            else:
                words.append(token)


def commands() -> list[Command]:
    found = []
    for path in workflows():
        for job_name, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                for words in simple_commands(str(step.get("run", ""))):
                    found.append(Command(str(path.relative_to(REPO)), job_name, words))
    return found


def invoke_tasks() -> Collection:
    spec = importlib.util.spec_from_file_location("commonshelf_tasks_under_test", REPO / "tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Collection.from_module(module)


def nox_sessions() -> set[str]:
    """Session names in noxfile.py: functions decorated @nox.session (or with name=...)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse((REPO / "noxfile.py").read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if ast.unparse(target) in ("nox.session", "session"):
                named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
                given = named[0].value if named and isinstance(named[0], ast.Constant) else None
                names.add(given if isinstance(given, str) else node.name)
    return names


def check_task(collection: Collection, words: tuple[str, ...]) -> str | None:
    """Why `invoke WORDS` would fail to parse (None: it names a task and its options)."""
    if not words or words[0] in ("--list", "-l"):
        return None
    name, options = words[0], [w for w in words[1:] if w.startswith("-")]
    if name not in collection.task_names:
        if name in PENDING:
            return None
        return f"no invoke task {name!r} in tasks.py"
    if name in PENDING:
        return f"{name!r} exists now: remove it from PENDING in this test"
    known = {
        f"-{n}" if len(n) == 1 else f"--{n}"
        for argument in collection[name].get_arguments()
        for n in argument.names
    }
    unknown = [o for o in options if o.split("=", 1)[0] not in known | {"--help", "-h"}]
    return f"`invoke {name}` has no option {', '.join(unknown)}" if unknown else None


def problem(command: Command, collection: Collection, sessions: set[str]) -> str | None:
    program, *args = command.words
    if program.startswith(".venv/bin/"):
        program = program.removeprefix(".venv/bin/")
        if program not in VENV_TOOLS:
            return f".venv/bin/{program} is not a tool the bootstrap installs for workflows"
    if program == "./shelf":
        return None if args and args[0] in SHELF_OWN else check_task(collection, tuple(args))
    if program == "invoke":
        return check_task(collection, tuple(args))
    if program == "nox":
        named = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-s", "--session")]
        missing = [s for s in named if s not in sessions]
        if not named:
            return "nox without -s SESSION runs the default sessions: name them"
        return f"no nox session {', '.join(missing)} in noxfile.py" if missing else None
    if "/" in program:
        script = REPO / program
        if not script.is_file() or not os.access(script, os.X_OK):
            return f"{program} is not an executable file of the repository"
        return None
    if program not in SYSTEM:
        return f"{program!r} is neither a project command nor a runner tool listed in SYSTEM"
    if program == "git" and args[:1] == ["add"]:
        absent = [p for p in args[1:] if not p.startswith("-") and not (REPO / p).exists()]
        return f"git add names missing files {absent}" if absent else None
    return None


def test_every_command_a_workflow_runs_exists() -> None:
    collection, sessions = invoke_tasks(), nox_sessions()
    found = commands()
    assert len(found) > 10
    problems = [f"{c}: {why}" for c in found if (why := problem(c, collection, sessions))]
    assert not problems, "\n".join(problems)


def test_the_checker_refuses_what_does_not_exist() -> None:
    """The checks above fail when they should: a made-up task, option, session or script."""
    collection, sessions = invoke_tasks(), nox_sessions()
    for script in (
        "./shelf no-such-task",
        ".venv/bin/invoke release --no-such-option",
        "nox -s no-such-session",
        "ci/no-such-script.sh",
        "curl https://example.org | sh",
        "git add no-such-file.json",
    ):
        [words] = list(simple_commands(script))[:1] or [()]
        assert problem(Command("t", "j", words), collection, sessions), script
    assert problem(Command("t", "j", ("./shelf", "vet", "--changed")), collection, sessions) is None
    assert list(simple_commands('if [ -n "$X" ]; then\n  A=1 invoke vet # c\nfi')) == [
        ("[", "-n", "$X", "]"),
        ("invoke", "vet"),
    ]


@pytest.mark.parametrize("forge", FORGES)
def test_each_forge_lints_vets_releases_and_runs_the_scheduled_jobs(forge: str) -> None:
    path = CI / forge / "commonshelf.yml"
    workflow = load(path)
    on = triggers(workflow)
    assert {"pull_request", "push", "schedule"} <= set(on), on
    assert on["push"]["branches"] == ["main"]
    runs: dict[str, list[str]] = {
        job: [
            " ".join(c.words)
            for c in commands()
            if c.workflow.endswith(f"{forge}/commonshelf.yml") and c.job == job
        ]
        for job in workflow["jobs"]
    }
    by_trigger = {
        trigger: [
            job for job, spec in workflow["jobs"].items() if trigger in str(spec.get("if", ""))
        ]
        for trigger in ("pull_request", "push", "schedule")
    }

    def ran(trigger: str) -> list[str]:
        return [line for job in by_trigger[trigger] for line in runs[job]]

    assert ".venv/bin/nox -s lint" in ran("pull_request")
    assert "./shelf vet --changed" in ran("pull_request")
    release = [
        j for j, spec in workflow["jobs"].items() if "refs/heads/main" in str(spec.get("if"))
    ]
    assert release and any("invoke release" in line for j in release for line in runs[j])
    assert any(line.startswith("ci/publish.sh") for j in release for line in runs[j])
    scheduled = " | ".join(ran("schedule"))
    for needed in ("invoke refresh", "invoke rescan", "nox -s nightly", "ci/publish.sh"):
        assert needed in scheduled, needed
    # a signing task is uploaded before the next one starts from the published repository
    for job in [*release, *by_trigger["schedule"]]:
        lines = runs[job]
        signing = [
            i
            for i, line in enumerate(lines)
            if re.search(r"invoke (release|rescan|refresh|promote)", line)
        ]
        for i in signing:
            assert any(line.startswith("ci/publish.sh") for line in lines[i + 1 :][:1]), (
                job,
                lines[i],
            )


def test_every_secret_and_variable_is_documented() -> None:
    readme = (CI / "README.md").read_text(encoding="utf-8")
    for path in workflows():
        text = path.read_text(encoding="utf-8")
        names = set(re.findall(r"\$\{\{[^}]*?\b(?:secrets|vars)\.([A-Za-z0-9_]+)", text))
        names |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z0-9_]+)", text))
        assert names, path
        undocumented = sorted(n for n in names if f"`{n}`" not in readme)
        assert not undocumented, f"{path.name}: document {undocumented} in ci/README.md"
