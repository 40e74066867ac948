"""docs/settings.md is the one place settings are documented: every setting the code reads is
there, every setting there is read by the code, and a default written there as a value is the
code's own."""

import ast
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from gmall_payment.adapters import metrics
from gmall_payment.adapters.config import LifecycleSettings, SeckillSettings
from gmall_payment.adapters.dramatiq.broker import BrokerSettings
from gmall_payment.plugins.alipay import config as alipay_config
from gmall_payment.plugins.mockpay import config as mockpay_config
from gmall_payment.ports.settings import Setting, declared
from gmall_payment.webapp import settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "settings.md"
#: Folders whose upper-case strings are not settings the shop reads.
NOT_SOURCE = {"tests", "benchmarks", "migrations", "docs", "distributions"}
#: Upper-case strings in the code that are not settings, and what they are.
NOT_SETTINGS = {
    "PATH_INFO",
    "REMOTE_ADDR",
    "REQUEST_METHOD",
    "SCRIPT_NAME",  # WSGI environ keys (and HTTP_*)
    "FAST_INSTANT_TRADE_PAY",
    "QUICK_WAP_WAY",  # Alipay's product codes
    "TRADE_CLOSED",
    "TRADE_FINISHED",
    "TRADE_SUCCESS",  # Alipay's protocol
    "WAIT_BUYER_PAY",
    "SQLALCHEMY_DATABASE_URI",
    "SQLALCHEMY_ENGINE_OPTIONS",  # Flask-SQLAlchemy's, derived from DATABASE_URL
    "INSTANCE_PATH",  # the instance folder the factory was given (GMALL_INSTANCE_PATH)
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",  # the endings of a key pair's two settings, in messages
    "ADDED_COLUMNS",  # what a schema revision declares it added (adapters/sql/schema.py)
    "ADDED_INDEXES",
    "ADDED_TABLES",
}
SETTING = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+\Z")


def source_files() -> list[Path]:
    """The package's own Python files."""
    return [
        path
        for path in ROOT.rglob("*.py")
        if not NOT_SOURCE & set(path.relative_to(ROOT).parts)
        and ".venv" not in path.parts
        and ".tox" not in path.parts
    ]


def code_settings() -> set[str]:
    """Upper-case names the package's code spells out: with an underscore anywhere, and
    single words where they are looked up (``config.get("PROVIDERS")``, ``config["PRODUCTION"]``)."""
    names = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SETTING.match(node.value):
                names.add(node.value)
            looked_up = (
                node.slice
                if isinstance(node, ast.Subscript)
                else node.args[0]
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get", "setdefault")
                and node.args
                else None
            )
            if (
                isinstance(looked_up, ast.Constant)
                and isinstance(looked_up.value, str)
                and re.fullmatch(r"[A-Z]{4,}", looked_up.value)
            ):
                names.add(looked_up.value)
    return {name.removeprefix("GMALL_") for name in names if not name.startswith("HTTP_")} - NOT_SETTINGS


def documented() -> dict[str, str | None]:
    """Each documented setting and its default as written, when written as a value (`…`)."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        keys = []
        for key in re.findall(r"`([^`]+)`", cells[0]):
            keys.append(keys[-1] + key[3:] if key.startswith("...") else key)
        values = re.findall(r"`([^`]*)`", cells[1])
        literal = re.fullmatch(r"(`[^`]*`(, )?)+", cells[1]) and len(values) == len(keys)
        for index, key in enumerate(keys):
            rows[key] = values[index] if literal else None
    return rows


#: Where the adapters' and the providers' settings are declared with their defaults
#: (``ports.settings``): the settings dataclasses, and the modules holding ``Setting`` constants.
DECLARING = (BrokerSettings, SeckillSettings, LifecycleSettings, metrics, mockpay_config, alipay_config)


def code_defaults() -> dict[str, object]:
    """Each setting's default, from the one place it is written: the web application's
    ``settings.defaults``, or its ``Setting`` declaration."""
    specs = declared(*DECLARING)  # raises when two declare one key
    return {
        **settings.defaults("instance"),  # the instance folder as the docs name it
        **{key: spec.default for key, spec in specs.items()},
    }


def fallbacks_at_read_sites() -> dict[str, list[str]]:
    """``{KEY: [where]}`` for each place the package's code reads a setting with a default of
    its own: ``get("KEY", default)`` or ``get("KEY") or default``, the default not empty."""
    found: dict[str, list[str]] = {}
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and _get_key(node.values[0]):
                key, fallback = _get_key(node.values[0]), node.values[-1]
            elif _get_key(node) and len(node.args) == 2:
                key, fallback = _get_key(node), node.args[1]
            else:
                continue
            if _get_key(fallback):  # get("A") or get("B"): either is set, no default
                continue
            if not (isinstance(fallback, ast.Constant) and fallback.value in (None, "")):
                found.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _get_key(node) -> str | None:
    """KEY when ``node`` is a call ``….get("KEY", …)`` of an upper-case KEY."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]{3,}", node.args[0].value)
    ):
        return node.args[0].value
    return None


def written(value) -> str:
    """A default as the docs write it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float | Decimal) and value == int(value):
        return str(int(value))
    if isinstance(value, timedelta):
        return written(value.total_seconds())
    if isinstance(value, tuple | list):
        return ",".join(written(item) for item in value)
    return str(value)


def test_every_setting_the_code_reads_is_documented():
    missing = code_settings() - set(documented())
    assert not missing, f"settings the code reads that docs/settings.md does not list: {sorted(missing)}"


def test_every_documented_setting_is_read_by_the_code():
    code = code_settings()
    stale = {key for key in documented() if key not in code and key.removesuffix("_FILE") not in code}
    assert not stale, f"docs/settings.md lists settings the code never reads: {sorted(stale)}"


def test_every_default_written_as_a_value_is_the_codes():
    defaults = code_defaults()
    wrong, unknown = {}, []
    for key, value in documented().items():
        if value is None:
            continue  # described in words ("generated into instance/…"): nothing to compare
        if key not in defaults:
            unknown.append(key)
        elif written(defaults[key]) != value:
            wrong[key] = (value, written(defaults[key]))
    assert not wrong, f"docs/settings.md writes these defaults, the code has others (docs, code): {wrong}"
    assert not unknown, f"defaults written in docs/settings.md that no settings reader declares: {unknown}"


def test_each_default_is_written_once():
    """One source for each default: the web application's defaults or a ``Setting``, never both,
    and no place that reads a setting with a declared default writes one of its own."""
    webapp, specs = set(settings.defaults("instance")), declared(*DECLARING)
    assert not webapp & set(specs), (
        f"defaults in webapp/settings.py and in a Setting: {sorted(webapp & set(specs))}"
    )
    for key, spec in specs.items():
        assert spec.key == key and key not in NOT_SETTINGS
    twice = {key: where for key, where in fallbacks_at_read_sites().items() if key in webapp | set(specs)}
    assert not twice, f"settings read with a default of their own beside the declared one: {twice}"


def test_every_setting_read_with_a_default_of_its_own_is_one_without_a_declared_default():
    """What the scan above sees: it finds a read site's own default (else it would pass on nothing)."""
    found = fallbacks_at_read_sites()
    assert "ALIPAY_APP_ID" in found  # the offline gateway's identity, described in words in the docs
    assert "TIMEZONE" not in found and "ORDER_PAY_TIMEOUT_SECONDS" not in found


def test_declaring_a_default_twice_is_refused():
    class Twice:
        A = Setting("SOME_SETTING", 1)
        B = Setting("SOME_SETTING", 2)

    with pytest.raises(ValueError, match="SOME_SETTING is declared twice"):
        declared(Twice)


def test_every_renamed_setting_is_documented_as_deprecated():
    rows = {
        row.split("|")[1].strip(" `"): row
        for row in DOC.read_text(encoding="utf-8").splitlines()
        if row.startswith("| `")
    }
    renamed = [spec for spec in declared(*DECLARING).values() if spec.formerly]
    assert renamed, "ORDER_PAY_TIMEOUT is one"
    for spec in renamed:
        assert "deprecated" in rows[spec.formerly] and spec.key in rows[spec.formerly]


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (1.0, "1"), (0.1, "0.1"), ((0, 1.5), "0,1.5")])
def test_defaults_are_compared_as_the_docs_write_them(value, text):
    assert written(value) == text
