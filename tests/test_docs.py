"""The README and docs/ speak to a user holding only the clone: every link and path they
name exists in it, and no word refers to how the project was made."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Paths into the clone as the docs write them: `docs/RESULTS.md`, src/omuda/engine/step.py
# (other projects' configs/... quoted in docs/ are theirs, not the clone's).
PATH_TOKEN = re.compile(
    r"(?<![\w/.])(?:docs|src/omuda|tests|scripts|configs/(?:gta2cs|syn2cs|synthetic))"
    r"(?:/[\w./*{}<>,-]*)?"
)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_links_and_paths_exist_in_the_clone(doc):
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):  # Markdown links
        if not re.match(r"[a-z]+://|#", target) and not (doc.parent / target).exists():
            missing.append(target)
    for token in PATH_TOKEN.findall(text):
        token = token.rstrip(".,")
        if any(mark in token for mark in "*{<"):  # a pattern, not a path
            continue
        if not (REPO / token).exists():
            missing.append(token)
    assert not missing, f"{doc.name} names paths missing from the clone: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_no_word_about_how_the_project_was_made(doc):
    text = doc.read_text(encoding="utf-8")
    words = re.findall(r"\b(?:issues?|sessions?)\b|\.\./shared", text, flags=re.IGNORECASE)
    assert not words, f"{doc.name}: {words}"


def test_readme_first_screen_says_what_the_demo_does_and_what_comes_next():
    first_screen = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:60])
    for needed in (
        "bash scripts/demo.sh",  # the command
        "minutes on a 2-core laptop",  # how long
        "mIoU (19)",  # what it prints at the end
        "work_dirs/demo-",  # where the runs are
        "source .venv/bin/activate",  # how to reach the `omuda` command
        "omuda predict",
        "omuda config show",
        "omuda compare",
    ):
        assert needed in first_screen, needed
    demo = (REPO / "scripts/demo.sh").read_text(encoding="utf-8")
    assert "Runs go to $RUN/" in demo and "The runs are in $RUN/" in demo
