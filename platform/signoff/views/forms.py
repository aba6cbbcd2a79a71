"""Forms without a form library: the request form generated from a workflow's field
schema, and the YAML text of definitions and rules.

The field schema (``definition.fields``: name, type, required, min, max,
max_length, choices, label) becomes HTML inputs with matching client-side hints
(``required``, ``min``, ``maxlength``); the server-side check is always
:func:`signoff.workflow.definitions.validate_input`, whose error paths
(``input_data.<field>``) are shown next to their inputs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import yaml
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from signoff.errors import Invalid
from signoff.inputs import BadInput, parse_json
from signoff.languages import AmountError, format_amount, parse_amount
from signoff.workflow.definitions import FieldDef, WorkflowDefinition


@dataclass(frozen=True)
class Widget:
    """One input of the request form."""

    name: str
    label: str
    kind: str  # text | textarea | number | decimal | checkbox | date | select
    required: bool
    value: Any
    attrs: dict[str, Any]
    choices: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def _bound(value: Decimal | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return format(value, "f")


_CANONICAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _shown_amount(value: Any) -> Any:
    """A stored amount ("1500.50") as the person's language writes it ("1.500,50")."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return format_amount(value)
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        return format_amount(Decimal(value))
    return value


class FormProblems(Invalid):
    """Typed inputs that cannot be read (an ambiguous amount); ``values`` as typed."""

    def __init__(self, errors: dict[str, list[str]], values: dict[str, Any]) -> None:
        super().__init__("invalid_input", _("Some fields are not valid."), errors=errors)
        self.values = values


def _widget(fdef: FieldDef, value: Any, errors: list[str]) -> Widget:
    attrs: dict[str, Any] = {}
    kind = {
        "string": "text",
        "text": "textarea",
        "integer": "number",
        "decimal": "decimal",
        "boolean": "checkbox",
        "date": "date",
        "choice": "select",
    }[fdef.type]
    if fdef.type in ("string", "text"):
        attrs["maxlength"] = fdef.max_length or (255 if fdef.type == "string" else 10000)
    if fdef.type in ("integer", "date"):
        if (low := _bound(fdef.min)) is not None:
            attrs["min"] = low
        if (high := _bound(fdef.max)) is not None:
            attrs["max"] = high
    if fdef.type == "integer":
        attrs["step"] = "1"
    if fdef.type == "decimal":
        attrs["inputmode"] = "decimal"
        attrs["pattern"] = r"[\-+]?[0-9][0-9.,]*"
        hints = []
        if isinstance(fdef.min, Decimal):
            hints.append(_("at least %(amount)s", amount=format_amount(fdef.min)))
        if isinstance(fdef.max, Decimal):
            hints.append(_("at most %(amount)s", amount=format_amount(fdef.max)))
        if hints:
            attrs["title"] = ", ".join(hints)
        if not errors:
            value = _shown_amount(value)
    label = fdef.label or fdef.name.replace("_", " ").capitalize()
    return Widget(
        name=fdef.name,
        label=label,
        kind=kind,
        required=fdef.required and fdef.type != "boolean",
        value=value,
        attrs=attrs,
        choices=tuple(fdef.choices),
        errors=tuple(errors),
    )


def request_widgets(
    defn: WorkflowDefinition,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[Widget]:
    """The inputs for ``defn``'s fields, filled with ``values`` and their errors."""
    values = values or {}
    errors = errors or {}
    return [
        _widget(f, values.get(f.name), errors.get(f"input_data.{f.name}", [])) for f in defn.fields
    ]


def form_input(defn: WorkflowDefinition, form: MultiDict[str, str]) -> dict[str, Any]:
    """``input_data`` from a submitted form: strings as typed, booleans from checkboxes,
    amounts read in the person's language (:func:`signoff.languages.parse_amount`) and
    given on as plain decimals, empty optional inputs left out (validate_input does the
    real checking). An amount that cannot be read, or could be read two ways, raises
    :class:`FormProblems` naming its field."""
    data: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    if not defn.fields:
        # Schema-less workflow: free key/value lines "key: value".
        for line in (form.get("freeform") or "").splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                if key.strip():
                    data[key.strip()] = value.strip()
        return data
    for fdef in defn.fields:
        if fdef.type == "boolean":
            data[fdef.name] = form.get(fdef.name) in ("on", "true", "1")
            continue
        raw = form.get(fdef.name)
        if raw is None:
            continue
        if fdef.type != "text":
            raw = raw.strip()
        if raw == "":
            continue
        data[fdef.name] = raw
        if fdef.type == "decimal":
            try:
                data[fdef.name] = format(parse_amount(raw), "f")
            except AmountError as exc:
                problems[f"input_data.{fdef.name}"] = [str(exc)]
    if problems:
        raise FormProblems(problems, data)
    return data


def amount_fields(defn: WorkflowDefinition | None) -> frozenset[str]:
    """The numeric fields, shown grouped in the person's language."""
    if defn is None:
        return frozenset()
    return frozenset(f.name for f in defn.fields if f.type in ("decimal", "integer"))


def field_labels(defn: WorkflowDefinition | None) -> dict[str, str]:
    if defn is None:
        return {}
    return {f.name: (f.label or f.name.replace("_", " ").capitalize()) for f in defn.fields}


# --- YAML ---------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the definition's own order, list items indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


class YamlProblem(ValueError):
    """The text is not YAML/JSON, or not a mapping; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


MAX_TEXT = 200_000


def from_yaml(text: str, *, want: type = dict) -> Any:
    """Parse a definition typed by a person (YAML, of which JSON is a subset)."""
    if len(text) > MAX_TEXT:
        raise YamlProblem(f"the text is longer than {MAX_TEXT} characters")
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlProblem(f"not valid YAML: {exc.problem or exc}", line) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem("the text nests too deeply") from None
    if not isinstance(data, want):
        noun = "a mapping (name: ..., steps: ...)" if want is dict else "a list"
        raise YamlProblem(f"the text must be {noun}")
    # What JSON can say, checked as a JSON body is (depth, NUL, unpaired surrogates).
    try:
        return parse_json(json.dumps(data, default=str).encode())
    except BadInput as exc:
        raise YamlProblem(f"{exc.field}: {exc.message}") from None
    except (ValueError, RecursionError):
        raise YamlProblem("the text holds values JSON cannot represent") from None
