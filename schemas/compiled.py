"""A fast path for hot input schemas: a check that vouches for certainly-valid input.

Batch ingest spent half its CPU in marshmallow's `EventIn.load`, nearly all of it on
events that are valid. `compile_check(EventIn)` reads the schema's own fields and
validators once and returns a plain function that answers True only for input the schema
would load without error; anything else (and anything it does not understand) goes
through marshmallow, which words the errors. The field rules are read off the schema and
its validators are read by their own attributes (or, for any other kind, called as they
are), so the two cannot drift: the check may send a
valid body to marshmallow, it never passes one marshmallow would refuse.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate

from schemas.common import EARLIEST_YEAR, LATEST_YEAR, AwareDateTime, FullMatch, StrictFloat, StrictInteger

Check = Callable[[Any], bool]


def compile_check(schema: type[Schema]) -> Check:
    """True when `schema().load(value)` certainly succeeds; raises TypeError for a schema it cannot mirror."""
    instance = schema()
    hooks = {tag for tag, names in schema._hooks.items() if names}  # noqa: SLF001 (marshmallow's hook registry)
    if hooks - {"validates_schema"}:
        raise TypeError(f"{schema.__name__}: hooks {sorted(hooks)} have no fast path")
    schema_validators = []
    for name, many, options in schema._hooks.get("validates_schema", []):  # noqa: SLF001
        if many or options.get("pass_original"):
            raise TypeError(f"{schema.__name__}.{name}: a schema validator of that kind has no fast path")
        schema_validators.append(getattr(instance, name))
    for name, field in instance.fields.items():
        if field.data_key not in (None, name) or field.load_only or field.dump_only:
            raise TypeError(f"{schema.__name__}.{name}: renamed or one-way fields have no fast path")
    checks = {name: (_field_check(field), field.allow_none) for name, field in instance.fields.items()}
    required = [name for name, field in instance.fields.items() if field.required]
    closed = instance.unknown == RAISE

    def check(value: Any) -> bool:
        if type(value) is not dict or (closed and not value.keys() <= checks.keys()):
            return False
        if not all(name in value for name in required):
            return False
        for name, item in value.items():
            entry = checks.get(name)
            if entry is None:
                continue  # an unknown key of an open schema is dropped by marshmallow
            if item is None:
                if not entry[1]:
                    return False
            elif not entry[0](item):
                return False
        return not schema_validators or _passes(schema_validators, {k: value[k] for k in checks if k in value})

    return check


def _passes(validators: list[Callable[..., Any]], value: Any) -> bool:
    """Run marshmallow validators as they are: the fast path keeps their exact rules."""
    try:
        for run in validators:
            run(value)
    except ValidationError:
        return False
    return True


def _field_check(field: fields.Field) -> Check:
    if isinstance(field, fields.Nested):
        if not isinstance(field.nested, type) or field.many or field.only or field.exclude:
            raise TypeError(f"nested field {field!r} has no fast path")
        if field.validators or field.load_default not in (missing, dict):
            raise TypeError(f"nested field {field!r} has no fast path")
        return compile_check(field.nested)
    kind = _kind(field)
    rules = [_rule(v) for v in field.validators]
    if isinstance(field, fields.DateTime):
        if rules:
            raise TypeError(f"field {field!r}: validators of a date-time have no fast path")
        return kind
    if not rules:
        return kind
    if len(rules) == 1:
        rule = rules[0]
        return lambda v: kind(v) and rule(v)
    return lambda v: kind(v) and all(rule(v) for rule in rules)


def _rule(validator: Any) -> Check:
    """A validator as a predicate: the common ones spelt out (same attributes, same meaning),
    any other called as it is."""
    if isinstance(validator, validate.Range):
        lo, hi = validator.min, validator.max
        above = operator.ge if validator.min_inclusive else operator.gt
        below = operator.le if validator.max_inclusive else operator.lt
        return lambda v: (lo is None or above(v, lo)) and (hi is None or below(v, hi))
    if isinstance(validator, validate.Length):
        lo, hi, equal = validator.min, validator.max, validator.equal
        if equal is not None:
            return lambda v: len(v) == equal
        return lambda v: (lo is None or len(v) >= lo) and (hi is None or len(v) <= hi)
    if isinstance(validator, validate.OneOf):
        choices = frozenset(validator.choices)
        return lambda v: v in choices
    if isinstance(validator, FullMatch):
        fullmatch = validator.regex.fullmatch
        return lambda v: fullmatch(v) is not None
    if isinstance(validator, validate.Regexp):
        match = validator.regex.match
        return lambda v: match(v) is not None
    return lambda v: _passes([validator], v)


def _kind(field: fields.Field) -> Check:
    """The type rule of a field, exactly as its class deserialises: JSON types only, no
    coercion. Only classes whose `_deserialize` is mirrored here are accepted."""
    kind = type(field)
    if kind is StrictInteger:
        return lambda v: type(v) is int
    if kind is StrictFloat and not field.allow_nan:
        return lambda v: type(v) in (int, float) and abs(v) < 1e308 and not (type(v) is float and math.isnan(v))
    if kind is fields.String:
        return lambda v: type(v) is str
    if kind is AwareDateTime and field.default_timezone is None:
        return _aware_iso_in_range
    raise TypeError(f"field {field!r} has no fast path")


def _aware_iso_in_range(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.utcoffset() is not None and EARLIEST_YEAR <= parsed.year <= LATEST_YEAR
