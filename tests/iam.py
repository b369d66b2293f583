"""Would a function's role allow a request? The template's inline policies, evaluated offline.

There is no IAM policy simulator without an AWS account, so this models, by hand, IAM's
documented evaluation for what the template uses and nothing more: Allow statements (a Deny
fails loudly), Action and Resource wildcards, and the condition operators StringEquals,
StringLike, StringNotEquals, Null and their ForAllValues forms (all keys of a block must hold,
any value of a key may match, a missing key fails a plain operator and passes a ForAllValues
one). AWS-managed policies (logs, X-Ray) are not read. What the request context holds (which
keys Bedrock or DynamoDB put in it) is the caller's statement in each test, not checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from tollgate_local.cloudformation import Deployed, Split

STACK = "tollgate-test"
REGION = "us-east-1"
ACCOUNT = "123456789012"
#: Physical ARNs for the template resources policies name (GetAtt X.Arn / Ref X).
PHYSICAL = {
    "TenantTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-tenants",
    "UsageTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-usage",
    "TrendTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-trends",
    "AlertTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-alerts",
    "AdminTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-admin",
    "AggregationFailureQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-failures",
    "MeteringFallbackQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-metering-fallback",
    "MeteringDeadLetterQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-metering-dlq",
    "ArtifactsBucket": f"arn:aws:s3:::{STACK}-artifacts",
}
Context = Mapping[str, str | Sequence[str]]


def table_arn(logical: str) -> str:
    return PHYSICAL[logical]


def role_statements(template: Mapping[str, Any], function: str) -> list[dict[str, Any]]:
    """The inline policy statements of a function's role, with Ref / GetAtt / Sub resolved."""
    deployed = Deployed(STACK, REGION, ACCOUNT, dict(PHYSICAL), Split({}, {}), {})
    role = template["Resources"][f"{function}Role"]
    statements = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            statements.append(deployed.resolve(statement))
    return statements


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _operator_holds(operator: str, values: Mapping[str, Any], context: Context) -> bool:
    for_all = operator.startswith("ForAllValues:")
    base = operator.removeprefix("ForAllValues:")
    for key, wanted in values.items():
        wanted = _listed(wanted)
        if base == "Null":
            if (key not in context) != (wanted == ["true"]):
                return False
            continue
        present = key in context
        given = _listed(context[key]) if present else []

        def match(value: str, wanted: list[str] = wanted) -> bool:
            if base == "StringEquals":
                return value in wanted
            if base == "StringLike":
                return any(fnmatchcase(value, w) for w in wanted)
            if base == "StringNotEquals":
                return value not in wanted
            raise NotImplementedError(f"condition operator {operator} (add it to tests/iam.py)")

        if for_all:
            if not all(match(v) for v in given):
                return False
        elif not present:
            if base != "StringNotEquals":
                return False
        elif not any(match(v) for v in given):
            return False
    return True


def allowed(statements: Iterable[Mapping[str, Any]], action: str, resource: str, context: Context) -> bool:
    """Whether one of ``statements`` allows ``action`` on ``resource`` in ``context``."""
    for statement in statements:
        if statement["Effect"] != "Allow":
            raise NotImplementedError("Deny statements are not modelled (tests/iam.py)")
        if not any(fnmatchcase(action, a) for a in _listed(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
            continue
        if all(_operator_holds(op, values, context) for op, values in statement.get("Condition", {}).items()):
            return True
    return False


def tag_context(request: Mapping[str, str], resource: Mapping[str, str]) -> dict[str, str | list[str]]:
    """The tag keys of a request context: aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys."""
    context: dict[str, str | list[str]] = {f"aws:RequestTag/{k}": v for k, v in request.items()}
    context.update({f"aws:ResourceTag/{k}": v for k, v in resource.items()})
    if request:
        context["aws:TagKeys"] = sorted(request)
    return context
