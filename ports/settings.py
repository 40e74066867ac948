"""Reading settings: each setting declared once, with its default, and one check for numbers.

The adapters' settings and every provider's (the built-in ones and those of other
distributions) are read through this module. A ``Setting`` is a setting's key, its default
and how its value is checked, written in one place: the settings dataclasses declare their
fields with ``setting(...)``, a provider's module holds ``Setting`` constants.
``docs/settings.md`` documents each one; ``tests/docs`` checks the defaults written there
against these declarations (``declared``).

``number`` is the one check for numbers and durations (a setting in seconds ends in
``_SECONDS``): a value that cannot be used stops the start with the setting's name.
"""

import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass

log = logging.getLogger(__name__)

#: The key of a settings dataclass field's ``Setting`` in the field's metadata.
METADATA = "setting"


def number(value, key: str, *, kind: type = float, positive: bool = False, unit: str = "") -> float | int:
    """``value`` (a number, or its text as an environment or a config file gives it) as a
    finite ``kind`` (``float`` or ``int``), >= 0, or > 0 when ``positive``; ValueError names
    ``key`` and, when given, the ``unit`` (``"seconds"``)."""
    what = f"{'a whole number' if kind is int else 'a number'}{f' of {unit}' if unit else ''}"
    bound = f"{'>' if positive else '>='} 0"
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: {value!r} is not {what} (must be {bound})") from None
    if isinstance(value, bool) or not math.isfinite(parsed) or (kind is int and not parsed.is_integer()):
        raise ValueError(f"{key}: {value!r} is not {what} (must be {bound})")
    if parsed < 0 or (positive and parsed == 0):
        raise ValueError(f"{key}: {value!r} is not {what} {bound}")
    return int(parsed) if kind is int else parsed


def boolean(value, key: str) -> bool:
    """``value`` as a flag: a bool, or true/false, 1/0, yes/no, on/off in any case (as an
    environment gives them); anything else is a ValueError naming ``key``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{key} must be true or false, got {value!r}")


def unset(value) -> bool:
    """Whether a setting's value means "not set": absent (None) or empty, as ``GMALL_KEY=`` gives it."""
    return value is None or value == ""


@dataclass(frozen=True)
class Setting:
    """One setting: its ``key``, its ``default`` (used when the setting is unset) and its check.

    A text default makes the setting text; a number default (``int`` or ``float``, not a bool)
    makes it a number of that kind, checked by ``number`` (> 0 when ``positive``; in ``unit``,
    seconds for a key ending in ``_SECONDS``); a bool default makes it a flag, read by
    ``boolean``; any other default (a tuple) is given back as set, for the reader to parse. ``formerly`` is the setting's old name: still read when
    the new one is unset, with a warning naming both; the new name wins when both are set.
    """

    key: str
    default: object
    positive: bool = False
    unit: str = ""
    formerly: str | None = None

    @property
    def kind(self) -> type | None:
        kind = type(self.default)
        return kind if kind in (int, float) else None

    def read(self, settings: Mapping):
        """The setting's value in ``settings`` (its default when unset), checked."""
        value = self.given(settings)
        if value is None:
            value = self.default
        if isinstance(self.default, bool):
            return boolean(value, self.key)
        if self.kind is None:
            return str(value) if isinstance(self.default, str) else value
        unit = self.unit or ("seconds" if self.key.endswith("_SECONDS") else "")
        return number(value, self.key, kind=self.kind, positive=self.positive, unit=unit)

    def given(self, settings: Mapping):
        """What ``settings`` set, under the key or, when it is unset, under the former name; None: unset."""
        value = settings.get(self.key)
        if self.formerly and not unset(settings.get(self.formerly)):
            _deprecated(self.deprecation(settings))
            if unset(value):
                return settings.get(self.formerly)
        return None if unset(value) else value

    def deprecation(self, settings: Mapping) -> str | None:
        """What to say when ``settings`` still use the former name; None: they do not."""
        if not self.formerly or unset(settings.get(self.formerly)):
            return None
        if unset(settings.get(self.key)):
            return f"{self.formerly} is deprecated: rename it {self.key} (read as {self.key} for now)"
        return f"{self.formerly} is deprecated and ignored: {self.key} is set too, and is the one read"


def _deprecated(message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=4)
    log.warning("%s", message)


def setting(
    key: str, default, *, positive: bool = False, unit: str = "", formerly: str | None = None
) -> Field:
    """A settings dataclass's field that holds the setting ``key`` (see ``Setting``); its default is the field's."""
    spec = Setting(key, default, positive=positive, unit=unit, formerly=formerly)
    return field(default=default, metadata={METADATA: spec})


def from_settings(cls, settings: Mapping, **values):
    """``cls`` (a settings dataclass) made from ``settings``: every field declared with ``setting``
    read and checked, unless ``values`` gives it."""
    for item in fields(cls):
        spec = item.metadata.get(METADATA)
        if spec is not None and item.name not in values:
            values[item.name] = spec.read(settings)
    return cls(**values)


def declared(*owners) -> dict[str, Setting]:
    """``{key: Setting}`` for every setting the ``owners`` declare: the ``setting`` fields of a
    settings dataclass, the ``Setting`` constants of a module or class. ValueError when two
    declare one key: a setting has one default, written once."""
    found: dict[str, Setting] = {}
    for owner in owners:
        specs = (
            [item.metadata[METADATA] for item in fields(owner) if METADATA in item.metadata]
            if is_dataclass(owner)
            else []
        )
        specs += [value for value in vars(owner).values() if isinstance(value, Setting)]
        for spec in specs:
            if spec.key in found and found[spec.key] is not spec:
                raise ValueError(f"{spec.key} is declared twice")
            found[spec.key] = spec
    return found


def deprecations(settings: Mapping, specs: Iterable[Setting]) -> list[tuple[Setting, str]]:
    """Each of ``specs`` that ``settings`` still set under its former name, and what to say about it."""
    return [(spec, message) for spec in specs if (message := spec.deprecation(settings))]
