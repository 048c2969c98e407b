"""A trainer's settings are written once: its dataclass makes its flags, its flags make it back, nothing is lost.

Every training command's parser is checked: each setting has a flag, each flag that is not a run flag is a
setting, the CLI's defaults are the dataclass's (one is generated from the other), and a non-default value of
every flag reaches the settings object the trainer is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from typing import Any

import pytest

from protein_didi.cli import COMMANDS, DOMAINS
from protein_didi.core.didi import DidiConfig
from protein_didi.core.idlm import IdlmConfig
from protein_didi.core.run_driver import TRAINERS
from protein_didi.core.settings import (
    add_dataclass_args,
    dataclass_from_args,
    flag_of,
    redefault,
    setting,
    settings_dict,
    settings_fields,
)
from protein_didi.core.train_cli import DISTILL_INPUTS, RUN_FLAGS, distill_config
from protein_didi.protein.train_judge import ProteinJudgeSettings
from protein_didi.protein.train_teacher import ProteinTeacherSettings
from protein_didi.text.train_judge import TextJudgeSettings
from protein_didi.text.train_teacher import TextTeacherSettings

REQUIRED = {"distill": ["--out", "o"], "train_teacher": ["--data", "d", "--out", "o"]}
REQUIRED["train_judge"] = REQUIRED["train_teacher"]
# command, domain → the settings classes its parser is made from (distill: one per --method)
SETTINGS: dict[tuple[str, str], tuple[type, ...]] = {
    ("distill", "protein"): (DidiConfig, IdlmConfig),
    ("distill", "text"): (DidiConfig, IdlmConfig),
    ("train_teacher", "protein"): (ProteinTeacherSettings,),
    ("train_teacher", "text"): (TextTeacherSettings,),
    ("train_judge", "protein"): (ProteinJudgeSettings,),
    ("train_judge", "text"): (TextJudgeSettings,),
}
CASES = [pytest.param(command, domain, cls, id=f"{command}-{domain}-{cls.__name__}")
         for (command, domain), classes in SETTINGS.items() for cls in classes]  # fmt: skip


def parser_of(command: str, domain: str) -> argparse.ArgumentParser:
    return importlib.import_module(COMMANDS[command][DOMAINS.index(domain)]).build_parser()


def settings_of(command: str, cls: type, argv: list[str], parser: argparse.ArgumentParser) -> Any:
    """The settings object the command hands its trainer for ``argv``."""
    method = {t.config_type: name for name, t in TRAINERS.items()}.get(cls)
    args = parser.parse_args([*REQUIRED[command], *(["--method", method] if method else []), *argv])
    return distill_config(args) if method else dataclass_from_args(cls, args)


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"}


def other_value(field: dataclasses.Field, default: Any) -> list[str]:
    """Arguments that set ``field`` to something other than ``default`` (a switch is its flag alone)."""
    spec = flag_of(field)
    if isinstance(default, bool):
        return [spec.flag]
    if spec.choices is not None:
        return [spec.flag, str(next(c for c in spec.choices if c != default))]
    if isinstance(default, float) and default:
        return [spec.flag, repr(default / 2)]
    kind = type(default) if default is not None else (spec.parse or _annotation(field))
    return [spec.flag, {int: "3", float: "1e-4", str: "x"}[kind]]


def _annotation(field: dataclasses.Field) -> type:
    text = str(field.type)
    return next(t for t in (int, float, str) if text.startswith(t.__name__))


@pytest.mark.parametrize(("command", "domain"), list(SETTINGS))
def test_every_flag_is_a_setting_or_a_run_flag(command, domain):
    parser = parser_of(command, domain)
    setting_flags = {flag_of(f).flag for cls in SETTINGS[command, domain] for f in settings_fields(cls)}
    others = flags(parser) - setting_flags
    allowed = {*RUN_FLAGS, *DISTILL_INPUTS} if command == "distill" else set(RUN_FLAGS)
    assert others <= allowed, f"flags that reach no settings object: {sorted(others - allowed)}"
    assert setting_flags <= flags(parser)


@pytest.mark.parametrize(("command", "domain", "cls"), CASES)
def test_cli_defaults_are_the_dataclass_defaults(command, domain, cls):
    assert settings_of(command, cls, [], parser_of(command, domain)) == cls()


@pytest.mark.parametrize(("command", "domain", "cls"), CASES)
def test_every_flag_reaches_the_settings(command, domain, cls):
    parser, default = parser_of(command, domain), cls()
    for field in settings_fields(cls):
        argv = other_value(field, getattr(default, field.name))
        changed = settings_of(command, cls, argv, parser)
        assert getattr(changed, field.name) != getattr(default, field.name), f"{argv} did not reach {field.name}"


def test_the_drifted_defaults_are_the_clis():
    """Bank 32 (what the README's runs and shipped students used); IDLM's fake model learns at the student's rate."""
    assert DidiConfig().bank_size == IdlmConfig().bank_size == 32
    assert IdlmConfig().lr_aux == IdlmConfig().lr_student == 1e-5
    assert IdlmConfig(lr_student=3e-5).lr_aux == 3e-5 and IdlmConfig(lr_aux=0.0).lr_aux == 0.0
    parser = parser_of("distill", "protein")
    assert settings_of("distill", IdlmConfig, ["--lr-student", "3e-5"], parser).lr_aux == 3e-5
    assert settings_of("distill", DidiConfig, ["--no-regularization"], parser).kl_weight == 0.0


def test_settings_record_every_field():
    settings = ProteinTeacherSettings(init="antiberty")
    recorded = settings_dict(settings)
    assert set(recorded) == {f.name for f in settings_fields(ProteinTeacherSettings)}
    assert recorded["lr"] == 4e-5 and recorded["lr_end"] == 1e-5 and recorded["init"] == "antiberty"


def test_a_setting_without_a_flag_or_a_flag_without_its_setting_is_caught():
    @dataclasses.dataclass(kw_only=True)
    class Base:
        rate: float = setting(0.5, "a rate (default {default})", "--rate")
        fixed: int = 3  # planted: a field with no flag

    with pytest.raises(TypeError, match="'fixed' has no command-line flag"):
        add_dataclass_args(argparse.ArgumentParser(), Base)

    @dataclasses.dataclass(kw_only=True)
    class Fixed(Base):
        fixed: int = setting(3, "fixed", "--fixed")

    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, Fixed)
    assert "(default 0.5)" in parser.format_help()
    assert dataclass_from_args(Fixed, parser.parse_args(["--fixed", "4"])) == Fixed(fixed=4)
    with pytest.raises(AttributeError, match="no --fixed"):  # a parser that dropped a setting's flag
        dataclass_from_args(Fixed, argparse.Namespace(rate=0.5))

    @dataclasses.dataclass(kw_only=True)
    class Other(Base):
        rate: float = redefault(Base, "rate", 0.25)  # the same flag for another default
        fixed: int = setting(3, "fixed", "--fixed")

    with pytest.raises(ValueError, match="--rate is declared twice"):
        add_dataclass_args(parser, Other)
