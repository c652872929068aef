"""One declaration per setting: its JSON schema and its check come from the same line.

A setting's type, default, bounds and allowed values are written once, in a ``Field``;
the config schema (what ``--about``, Meltano and the Hub show) and the reader that
refuses a bad value with one line naming it are both derived from it, so they cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from singer_sdk import typing as th

from tap_appsflyer_cohort.errors import ConfigError

Kind = Literal["string", "integer", "boolean", "string_list", "object", "date", "any"]


@dataclass(frozen=True)
class Field:
    """One setting (or report field): name, type, default, bounds, text."""

    name: str
    kind: Kind
    description: str
    default: Any = None
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None
    secret: bool = False
    #: A JSON schema used as is (for settings whose shape no helper type says).
    schema: Mapping[str, Any] | None = None

    def json_type(self) -> th.JSONTypeHelper[Any]:
        """The singer-sdk type helper, with the bounds and choices in the schema."""
        if self.schema is not None:
            return th.CustomType(dict(self.schema))
        if self.kind == "integer":
            return th.IntegerType(minimum=self.minimum, maximum=self.maximum)
        if self.kind == "boolean":
            return th.BooleanType()
        if self.kind == "string_list":
            return th.ArrayType(th.StringType)
        if self.kind == "object":
            return th.ObjectType(additional_properties=True)
        if self.kind == "date":
            return th.DateType()
        if self.choices is not None:
            return th.StringType(allowed_values=list(self.choices))
        return th.StringType()

    def to_property(self) -> th.Property[Any]:
        """The JSON schema property of this field."""
        return th.Property(
            self.name,
            self.json_type(),
            required=self.required,
            default=self.default,
            secret=self.secret or None,
            description=self.description,
        )

    def read(self, raw: Mapping[str, Any], where: str) -> Any:
        """The field's value in ``raw`` (or its default), checked; ConfigError if bad."""
        if self.name not in raw:
            return self.default
        value = raw[self.name]
        here = f"{where} field '{self.name}'" if where else f"setting '{self.name}'"
        if value is None and self.kind in ("string_list", "object", "date", "any"):
            return None  # the caller decides what a null list or object means
        if self.kind == "integer":
            low = self.minimum if self.minimum is not None else -(10**18)
            high = self.maximum if self.maximum is not None else 10**18
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(here, f"expected an integer from {low} to {high}, got {value!r}")
        elif self.kind == "boolean":
            if not isinstance(value, bool):
                raise ConfigError(here, f"expected true or false, got {value!r}")
        elif self.choices is not None:
            if value not in self.choices:
                raise ConfigError(here, f"{value!r} is not one of: {', '.join(self.choices)}")
        elif self.kind == "string" and not isinstance(value, str):
            raise ConfigError(here, f"expected a string, got {value!r}")
        return value


def schema_of(fields: Sequence[Field]) -> th.PropertiesList:
    """The JSON schema of a field table."""
    return th.PropertiesList(*(field.to_property() for field in fields))


def field_named(fields: Sequence[Field], name: str) -> Field:
    """The field called ``name`` (a programming error if there is none)."""
    return next(field for field in fields if field.name == name)
