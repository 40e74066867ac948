"""docs/providers.md lists every hook of ``ports/hookspecs.py``, with its arguments and a line of
description, and no hook that is not there (datasette's ``tests/test_docs.py`` does the same)."""

import inspect
import re
from pathlib import Path

import pytest

from gmall_payment.ports import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
#: A hook's entry under "### Hooks": ``- `name(arguments)`: what it does``.
ENTRY = re.compile(r"^- `(?P<name>gmall_payment_\w+)\((?P<args>[^)]*)\)`: (?P<description>\S.*)$", re.M)


def hook_specs() -> dict[str, inspect.Signature]:
    """Every hook the plugin manager is given, by name, as pluggy finds them (the spec marker)."""
    return {
        name: inspect.signature(function)
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, f"{hookspecs.PROJECT}_spec")
    }


def documented_hooks() -> dict[str, tuple[str, str]]:
    """Each hook listed in the "Hooks" section: its arguments as written, its description."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n### Hooks\n", 1)[1].split("\n#", 1)[0]
    return {m["name"]: (m["args"], m["description"]) for m in ENTRY.finditer(section)}


def test_the_hooks_are_found():
    assert {"gmall_payment_providers", "gmall_payment_sandbox_apps"} <= set(hook_specs())


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_is_documented_with_its_arguments(name):
    docs = documented_hooks()
    assert name in docs, (
        f"{name} is a hook of ports/hookspecs.py but not listed under '### Hooks' in {DOC.name}"
    )
    args, description = docs[name]
    assert [a.strip() for a in args.split(",") if a.strip()] == list(hook_specs()[name].parameters)
    assert len(description.split()) >= 5, f"{name}: say in a line what the hook is for"


def test_every_hook_documented_exists():
    assert set(documented_hooks()) <= set(hook_specs()), (
        "docs list a hook that ports/hookspecs.py no longer has"
    )


def test_every_hook_has_its_documentation_in_its_docstring():
    for name in hook_specs():
        assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring"
