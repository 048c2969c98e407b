"""A trainer's settings, declared once: each dataclass field carries its default, its help and its flag.

Why: a setting used to be written three times (the config field, the argparse flag, the mapping from one to
the other) and two had drifted (a config built in code trained another recipe than the CLI). Here the field is
the only home: :func:`add_dataclass_args` makes one flag per field of a settings class and
:func:`dataclass_from_args` reads every one of them back, so the CLI's defaults are the dataclass's, and a field
without a flag fails when its parser is built rather than being silently left at its default.

A field is declared with :func:`setting`; a subclass gives an inherited setting its own default (or help)
with :func:`redefault`, without writing its flag and help again. Help may quote the default as ``{default}``,
filled in when the flag is made, so the help cannot go stale either. A ``bool`` setting is a switch: its flag
turns on a setting that defaults to off, or (``--no-…``) turns off one that defaults to on. A settings class
may also check and complete itself in ``__post_init__`` (defaults that depend on other settings): built from
flags or in code, it is the same object.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

KEY = "protein_didi.setting"  # the metadata key a field's Flag is stored under
_KEEP: Any = object()  # redefault: keep the inherited default
T = typing.TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Flag:
    """How a setting appears on the command line. ``flag`` is empty only in a base class whose subclasses name it."""

    flag: str
    help: str
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    group: str | None = None  # title of the argument group it is listed under (the parser's own list otherwise)
    parse: Callable[[str], Any] | None = None  # argparse ``type``; default: from the field's annotation

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value under: the flag's name, without a leading ``no-`` (a switch)."""
        name = self.flag.lstrip("-").replace("-", "_")
        return name.removeprefix("no_")


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    flag: str = "",
    *,
    choices: tuple[Any, ...] | list[Any] | None = None,
    metavar: str | None = None,
    group: str | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """A dataclass field that is also a command-line flag (``flag``; ``help`` may quote ``{default}``)."""
    spec = Flag(flag, help, tuple(choices) if choices is not None else None, metavar, group, parse)
    return dataclasses.field(default=default, metadata={KEY: spec})


def redefault(cls: type, name: str, default: Any = _KEEP, **changes: Any) -> Any:
    """The setting ``name`` of the settings class ``cls`` with another default and any :class:`Flag` ``changes``.

    Why: trainers share a setting's meaning and flag (``--lr``) but not its default; a subclass re-declares the
    field with this, and the flag and help stay written once, in ``cls``.
    """
    inherited = {f.name: f for f in dataclasses.fields(cls)}[name]
    if "choices" in changes and changes["choices"] is not None:
        changes["choices"] = tuple(changes["choices"])
    spec = dataclasses.replace(inherited.metadata[KEY], **changes)
    return dataclasses.field(default=inherited.default if default is _KEEP else default, metadata={KEY: spec})


def flag_of(field: dataclasses.Field) -> Flag:
    """The :class:`Flag` of a settings field; a field declared without :func:`setting` or a flag is an error."""
    spec = field.metadata.get(KEY)
    if spec is None or not spec.flag:
        raise TypeError(
            f"setting {field.name!r} has no command-line flag: declare it with setting(default, help, flag) "
            "(or give it one with redefault in the class that reaches a parser)"
        )
    return spec


def settings_fields(cls: type) -> list[dataclasses.Field]:
    """The settings of a dataclass (its init fields)."""
    return [f for f in dataclasses.fields(cls) if f.init]


def default_text(value: Any) -> str:
    """A default as help quotes it: ``1e-3`` rather than ``0.001`` (if shorter); ``0.01``, ``0.999``, ``1.0`` as is."""
    if not isinstance(value, float):
        return str(value)
    plain = repr(value)
    mantissa, exponent = f"{value:e}".split("e")
    sci = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return sci if len(sci) < len(plain) else plain


def _value_type(annotation: Any) -> Any:
    """``int`` for ``int`` and ``int | None``: the type argparse converts a flag's text with."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner[0] if len(inner) == 1 else str
    return annotation


def add_dataclass_args(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    groups: Mapping[str, argparse._ArgumentGroup] | None = None,
) -> list[str]:
    """One flag per setting of ``cls``, in field order; returns the flags added.

    A setting whose :attr:`Flag.group` is in ``groups`` is listed there. A flag the parser already has (a setting
    ``cls`` shares with a class added before, e.g. the two distillation methods') is left as it is if it has the
    same default, and refused if not: one flag cannot stand for two defaults.
    """
    hints = typing.get_type_hints(cls)
    known: dict[str, argparse.Action] = parser._option_string_actions
    added = []
    for field in settings_fields(cls):
        spec = flag_of(field)
        default = None if field.default is dataclasses.MISSING else field.default
        if spec.flag in known:
            if known[spec.flag].default != default:
                raise ValueError(
                    f"{spec.flag} is declared twice with defaults {known[spec.flag].default!r} and {default!r}"
                )
            continue
        target = groups[spec.group] if groups and spec.group in groups else parser
        kwargs: dict[str, Any] = {"dest": spec.dest, "default": default, "help": spec.help}
        if field.default is dataclasses.MISSING:
            kwargs["required"] = True
        if "{default}" in spec.help:
            kwargs["help"] = spec.help.replace("{default}", default_text(default))
        kind = _value_type(hints[field.name])
        if kind is bool:
            if spec.flag.startswith("--no-") != bool(default):
                raise ValueError(f"{spec.flag}: a switch off by default is --name, one on by default --no-name")
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"] = spec.parse or kind
            if spec.choices is not None:
                kwargs["choices"] = spec.choices
            if spec.metavar is not None:
                kwargs["metavar"] = spec.metavar
        target.add_argument(spec.flag, **kwargs)
        added.append(spec.flag)
    return added


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The settings ``cls`` from flags :func:`add_dataclass_args` made: every setting read, none left behind.

    A setting whose flag the parser does not have is an error (``AttributeError``), not its default.
    """
    values = {}
    for field in settings_fields(cls):
        dest = flag_of(field).dest
        if not hasattr(args, dest):
            raise AttributeError(f"{cls.__name__}.{field.name}: the parser has no {flag_of(field).flag}")
        values[field.name] = getattr(args, dest)
    return cls(**values)


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings object as the ``settings`` entry of an export's info (every field, by name; JSON values)."""
    return {f.name: _json(getattr(settings, f.name)) for f in settings_fields(type(settings))}


def _json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)
