"""The migrations ship inside the installed package: setuptools' build (the step of ``pip install .``
that picks the files a non-editable install gets) copies every file of ``adapters/sql/migrations``."""

import shutil
import subprocess
import sys
from pathlib import Path

from gmall_payment.adapters.sql import schema

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCES = shutil.ignore_patterns(".*", "build", "dist", "*.egg-info", "__pycache__", "instance")


def files_under(folder: Path) -> set:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_a_build_of_the_package_holds_every_migration_file(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(
        ROOT, source, ignore=NOT_SOURCES
    )  # a build writes beside its sources: not in the worktree
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "--quiet",
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )

    shipped = files_under(tmp_path / "lib" / "gmall_payment" / "adapters" / "sql" / "migrations")

    assert {"alembic.ini", "env.py", "script.py.mako", "versions/0001_baseline.py"} <= shipped
    assert shipped == files_under(schema.MIGRATIONS)
