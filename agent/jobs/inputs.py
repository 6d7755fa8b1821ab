"""The tool's input document from a job's parameters and model, checked against the schema (pure).

The job's model is the value of the function's `user_model` input; every other declared input
is a `parameter` taken from the job's parameters file. Missing required parameters, parameters
the function does not declare, and values that fail their `validation_types` are refused with
one message that lists what the function accepts. Validators this agent does not know are
accepted (the vocabulary grows on the platform side; see docs/agent.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.jobs.errors import InvalidJob
from agent.protocol.manifest import FunctionSchema, InputSchema, InputType

InputDocument = dict[str, dict[str, Any]]


def build_inputs(
    schema: FunctionSchema,
    parameters: Mapping[str, Any],
    model: Path | None,
    credentials: Mapping[str, Path] | None = None,
) -> InputDocument:
    """`{name: {"type": ..., "value": ...}}` for the tool, or InvalidJob saying what is wrong."""
    declared = {n: s for n, s in schema.inputs.items() if s.type is InputType.PARAMETER}
    problems = _parameter_problems(declared, parameters)
    if problems:
        accepted = ", ".join(_describe(n, s) for n, s in declared.items()) or "none"
        msg = f"{'; '.join(problems)} (this function accepts: {accepted})"
        raise InvalidJob(msg)
    doc: InputDocument = {
        name: {"type": InputType.PARAMETER.value, "value": parameters[name]}
        for name in declared
        if name in parameters
    }
    doc.update(_file_inputs(schema, model, credentials or {}))
    return doc


def _parameter_problems(
    declared: Mapping[str, InputSchema], parameters: Mapping[str, Any]
) -> list[str]:
    problems: list[str] = []
    missing = [n for n, s in declared.items() if not s.optional and n not in parameters]
    if missing:
        problems.append(f"missing required parameter(s): {', '.join(missing)}")
    extra = sorted(set(parameters) - set(declared))
    if extra:
        problems.append(f"unknown parameter(s): {', '.join(extra)}")
    for name, spec in declared.items():
        if name in parameters:
            problem = check_value(parameters[name], spec.validation_types)
            if problem:
                problems.append(f"parameter {name}: {problem}")
    return problems


def _describe(name: str, spec: InputSchema) -> str:
    kinds = "|".join(spec.validation_types) or "any"
    return f"{name} ({kinds}{', optional' if spec.optional else ''})"


def _file_inputs(
    schema: FunctionSchema, model: Path | None, credentials: Mapping[str, Path]
) -> InputDocument:
    doc: InputDocument = {}
    target = _model_input(schema) if model is not None else None
    for name, spec in schema.inputs.items():
        if spec.type is InputType.PARAMETER:
            continue
        if name == target and model is not None:
            problem = check_extension(model.name, spec.validation_types)
            if problem:
                msg = f"input {name}: {problem}"
                raise InvalidJob(msg)
            doc[name] = {"type": spec.type.value, "value": str(model)}
        elif spec.type is InputType.AUTH_INFO and name in credentials:
            doc[name] = {"type": spec.type.value, "value": str(credentials[name])}
        elif not spec.optional:
            raise InvalidJob(_unbound(name, spec, model))
    return doc


def _model_input(schema: FunctionSchema) -> str | None:
    """The input the job's model fills: the first required model input, else the first one."""
    models = [(n, s) for n, s in schema.inputs.items() if s.type is InputType.USER_MODEL]
    required = [n for n, s in models if not s.optional]
    candidates = required or [n for n, _ in models]
    return candidates[0] if candidates else None


def _unbound(name: str, spec: InputSchema, model: Path | None) -> str:
    if spec.type is InputType.USER_MODEL:
        if model is None:
            return f"input {name} needs a model, and the job has none"
        return f"input {name} needs a second model; a job carries one"
    if spec.type is InputType.AUTH_INFO:
        return (
            f"Function inputs ['{name}'] not provided: no credential was delivered for it "
            "(bind a stored credential to it when submitting: auth_bindings; if one is bound, "
            "the registry delivers it only with the claim's answer, which this run of the "
            "agent did not see after a restart: submit the job again)"
        )
    return (
        f"Function inputs ['{name}'] not provided: {spec.type.value} inputs need link "
        "deliveries, which this agent does not handle yet"
    )


def check_extension(filename: str, validation_types: list[str]) -> str | None:
    """None when the file name fits one `@extension:` validator (or there are none)."""
    wanted = [v.split(":", 1)[1].lower().lstrip(".") for v in validation_types
              if v.startswith("@extension:")]  # fmt: skip
    if not wanted:
        return None
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix in wanted:
        return None
    return f"model {filename!r} is not a {' or '.join('.' + w for w in wanted)} file"


_JSON_KINDS: dict[str, tuple[type, ...]] = {
    "@number": (int, float),
    "@integer": (int,),
    "@string": (str,),
    "@boolean": (bool,),
    "@array": (list,),
    "@object": (dict,),
}


def check_value(value: Any, validation_types: list[str]) -> str | None:
    """None when `value` fits one of the validators (unknown validators accept anything)."""
    kinds = [v.split(":", 1)[0] for v in validation_types]
    known = [k for k in kinds if k in _JSON_KINDS]
    if not known or len(known) < len(kinds):
        return None
    for kind in known:
        types = _JSON_KINDS[kind]
        is_bool = isinstance(value, bool)
        if isinstance(value, types) and (kind == "@boolean" or not is_bool):
            return None
    return f"expected {' or '.join(k.removeprefix('@') for k in known)}, got {_json_type(value)}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for name, types in (("boolean", (bool,)), ("number", (int, float)), ("string", (str,)),
                        ("array", (list,)), ("object", (dict,))):  # fmt: skip
        if isinstance(value, types):
            return name
    return type(value).__name__
