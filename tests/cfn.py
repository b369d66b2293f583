"""template.yaml as CloudFormation would create it for given parameters, for tests that read it.

The SAM transform (samtranslator, offline, as ``tollgate local`` runs it) leaves Conditions and
``Fn::If`` for CloudFormation to decide. Nothing offline decides them (cfn-lint checks every
branch, moto decides them only for what it creates), so this evaluates the few condition
functions the template uses, by hand: Fn::Equals / Not / And / Or / Condition over parameter
values, then Fn::If and AWS::NoValue, and drops the resources whose Condition is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate_local.cloudformation import references, transformed

REGION = "us-east-1"
_NO_VALUE = object()


def _condition(expression: Any, parameters: Mapping[str, str], conditions: Mapping[str, Any]) -> bool:
    (function, args), *_ = expression.items()
    if function == "Condition":
        return _condition(conditions[args], parameters, conditions)
    if function == "Fn::Equals":
        left, right = (parameters[a["Ref"]] if isinstance(a, dict) else str(a) for a in args)
        return bool(left == right)
    if function == "Fn::Not":
        return not _condition(args[0], parameters, conditions)
    if function == "Fn::And":
        return all(_condition(a, parameters, conditions) for a in args)
    if function == "Fn::Or":
        return any(_condition(a, parameters, conditions) for a in args)
    raise NotImplementedError(f"condition function {function} (add it to tests/cfn.py)")


def _resolve_ifs(value: Any, truth: Mapping[str, bool]) -> Any:
    if isinstance(value, list):
        return [v for v in (_resolve_ifs(v, truth) for v in value) if v is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        return _resolve_ifs(when_true if truth[name] else when_false, truth)
    if value == {"Ref": "AWS::NoValue"}:
        return _NO_VALUE
    resolved = {k: _resolve_ifs(v, truth) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not _NO_VALUE}


def deployed_template(parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The transformed template, with conditions decided for ``parameters`` (others at their defaults)."""
    given = dict(parameters or {})
    cfn = transformed(given, REGION)
    values = {name: str(spec.get("Default", "")) for name, spec in cfn.get("Parameters", {}).items()}
    values.update(given)
    conditions = cfn.get("Conditions", {})
    truth = {name: _condition(expression, values, conditions) for name, expression in conditions.items()}
    resources = {
        name: resource for name, resource in cfn["Resources"].items() if truth.get(resource.get("Condition"), True)
    }
    created = _resolve_ifs({**cfn, "Resources": resources}, truth)
    created["ParameterValues"] = values
    return dict(created)


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == resource_type}


def depends_on(template: Mapping[str, Any], name: str) -> set[str]:
    """Every resource ``name`` waits for in CloudFormation: DependsOn and references, transitively."""
    resources = template["Resources"]
    seen: set[str] = set()
    pending = [name]
    while pending:
        resource = resources[pending.pop()]
        explicit = resource.get("DependsOn", [])
        found = (references(resource) | set([explicit] if isinstance(explicit, str) else explicit)) & set(resources)
        pending.extend(found - seen)
        seen |= found
    return seen
