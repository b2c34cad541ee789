"""Configurations of an implementation under audit: the options its users choose (an optimizer, a
control setting), each audited on the same cases, each finding naming its configuration.

A plug-in declares them as a module-level (or attribute) `CONFIGURATIONS`, a mapping from a name to
the keyword arguments it is called with:

    CONFIGURATIONS = {"default": {}, "method=lbfgs": {"method": "lbfgs"}}
    def fit(formula, data, REML, *, method=None): ...

A target names one configuration with a bracket, `statsmodels[method=lbfgs]` or
`mymodule:fit[default]`; on the command line `--config method=lbfgs`.  Options that are not a declared
configuration's name are still passed as keyword arguments (`--config method=newton,maxiter=500`),
values read as numbers or booleans where they look like one.  `Audited` is the implementation with
its configuration and capabilities bound: a case outside the capabilities raises `vcheck.Unsupported`
before the implementation is called.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vcheck.auditing import capabilities as caps
from vcheck.core.errors import VcheckError

__all__ = ["Audited", "Configuration", "ConfigurationError", "declared", "parse", "split_target"]

_BRACKET = re.compile(r"^(?P<target>.+?)\[(?P<config>[^\[\]]*)\]$")


class ConfigurationError(VcheckError, ValueError):
    """A configuration that cannot be used: a malformed `--config`, an unknown name, a bad CONFIGURATIONS."""


@dataclass(frozen=True)
class Configuration:
    """A named set of keyword arguments for the implementation (`default`: none)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def text_of(options: Mapping[str, Any]) -> str:
    """`method=lbfgs,maxiter=500` (the canonical name of options that have none); `default` for none."""
    if not options:
        return "default"
    return ",".join(f"{k}={_value_text(v)}" for k, v in options.items())


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def declared(impl: Any) -> dict[str, Configuration]:
    """The configurations `impl` declares (its `CONFIGURATIONS`, else its module's), in order; empty
    when it declares none (then it is audited as it is, with no configuration named)."""
    value = caps._attribute(impl, "CONFIGURATIONS")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError("CONFIGURATIONS must map a name to keyword arguments, e.g. {'default': {}}")
    out = {}
    for name, options in value.items():
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"configuration {name!r}: options must be a mapping, not {options!r}")
        out[str(name)] = Configuration(str(name), dict(options))
    return out


def parse(text: str, impl: Any = None) -> Configuration:
    """`--config TEXT`: a declared configuration's name, or `KEY=VALUE[,KEY=VALUE...]` options.

    Options equal to a declared configuration's are that configuration (and take its name)."""
    text = text.strip()
    known = declared(impl) if impl is not None else {}
    if text in known:
        return known[text]
    if not text or text == "default":
        return known.get("default", Configuration("default", {}))
    options: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            names = ", ".join(known) or "none declared"
            raise ConfigurationError(
                f"--config {text!r}: give KEY=VALUE options or a configuration's name ({names})"
            )
        options[key.strip()] = _value(value)
    for conf in known.values():
        if dict(conf.options) == options:
            return conf
    return Configuration(text_of(options), options)


def split_target(target: str) -> tuple[str, str | None]:
    """`statsmodels[method=lbfgs]` -> ("statsmodels", "method=lbfgs"); no bracket -> (target, None)."""
    match = _BRACKET.match(target.strip())
    if match is None:
        return target.strip(), None
    return match.group("target").strip(), match.group("config").strip()


def with_config(target: str, config: Configuration | str | None) -> str:
    """The target string naming one configuration: `statsmodels[method=lbfgs]`."""
    base, _ = split_target(target)
    return base if config is None else f"{base}[{config}]"


class Audited:
    """An implementation with its configuration and capabilities bound: what the audit calls.

    `impl(formula, data, REML, **arguments, **configuration.options)`, after checking that the case
    needs nothing outside `capabilities` (`vcheck.Unsupported` otherwise: the implementation is not
    called).  Its `name` is `target[configuration]`.
    """

    def __init__(
        self,
        impl: Any,
        *,
        target: str,
        configuration: Configuration | None = None,
        capabilities: frozenset[str] | None = None,
    ) -> None:
        self.impl = impl
        self.configuration = configuration
        self.capabilities = caps.declared(impl) if capabilities is None else capabilities
        self.target = split_target(target)[0]
        self.name = with_config(self.target, configuration)
        self.__name__ = self.name

    def __call__(self, formula: str, data: pd.DataFrame, REML: bool = True, **arguments: Any) -> Any:
        if set(caps.FAMILIES) - self.capabilities or any(v is not None for v in arguments.values()):
            caps.check(caps.needs_of(formula, data, REML, arguments), self.capabilities, self.target)
        options = dict(self.configuration.options) if self.configuration is not None else {}
        given = {k: v for k, v in arguments.items() if v is not None}
        return self.impl(formula, data, REML, **given, **options)

    def __repr__(self) -> str:
        return f"Audited({self.name})"
