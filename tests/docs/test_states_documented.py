"""docs/states.md shows every status machine as the code has it: it is rendered from
``core/states.py`` and must not drift from it."""

from pathlib import Path

from gmall_payment.core import states

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "states.md"


def test_the_doc_is_the_machines_as_the_code_has_them():
    assert DOC.read_text(encoding="utf-8") == states.document(), (
        "docs/states.md differs from core/states.py: run python -m gmall_payment.core.states > docs/states.md"
    )


def test_every_machine_and_every_move_is_in_the_doc():
    text = DOC.read_text(encoding="utf-8")
    for machine in states.MACHINES:
        assert f"(`{machine.statuses.__name__}`)" in text
        for move in machine.moves:
            assert f"    {move.source.name} --> {move.target.name}\n" in text


def test_the_readme_links_the_doc():
    assert "docs/states.md" in (ROOT / "README.md").read_text(encoding="utf-8")
