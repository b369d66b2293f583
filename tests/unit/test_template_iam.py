"""Each function's role allows what its code does and no more, by the code's own names and keys.

The policies are those of the transformed template (tests/cfn.py), evaluated by tests/iam.py
(a by-hand model of IAM's documented evaluation: there is no policy simulator offline). The tag
key, the stack it must name and the table partitions come from the code's constants, so the
template and the code cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest
from tollgate.adapters.dynamodb import KEY_PREFIX, REGISTRY_PK, STATE_PK
from tollgate.alarms import STACK_TAG

from tests.cfn import deployed_template
from tests.iam import ACCOUNT, REGION, STACK, allowed, role_statements, table_arn, tag_context

PROFILES = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:application-inference-profile"
OURS = f"{PROFILES}/ours0001"
THEIRS = f"{PROFILES}/theirs001"
NEW = f"{PROFILES}/new000001"
MODEL = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-micro-v1:0"
TENANTS = table_arn("TenantTable")
READS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return deployed_template()


@pytest.fixture(scope="module")
def provisioner(template: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(template, "ProvisionerFunction")


def test_the_custom_resource_names_the_stack_the_conditions_name(template: dict[str, Any]) -> None:
    # the provisioner tags with Targets.stack, which is this property (tollgate.provisioning.targets_from)
    assert template["Resources"]["ProfileProvisioning"]["Properties"]["StackName"] == {"Ref": "AWS::StackName"}


# --------------------------------------------------------------------------- Bedrock profiles


def test_the_provisioner_may_create_only_profiles_tagged_for_its_own_stack(provisioner: list[dict[str, Any]]) -> None:
    def may_create(tags: dict[str, str]) -> bool:
        # Bedrock authorizes CreateInferenceProfile on the new profile and on its model source, and
        # the tags given with it as TagResource; the new profile's tags are its aws:ResourceTag.
        context = tag_context(tags, tags)
        return (
            allowed(provisioner, "bedrock:CreateInferenceProfile", NEW, context)
            and allowed(provisioner, "bedrock:CreateInferenceProfile", MODEL, context)
            and allowed(provisioner, "bedrock:TagResource", NEW, context)
        )

    assert may_create({STACK_TAG: STACK, "tollgate:profile": "acme-chat", "TenantID": "acme"})
    assert not may_create({"tollgate:profile": "acme-chat"})
    assert not may_create({STACK_TAG: "tollgate-prod"})


def test_the_provisioner_may_retag_its_own_profiles_when_it_sends_its_stack_tag(
    provisioner: list[dict[str, Any]],
) -> None:
    ours = {STACK_TAG: STACK, "Application": "Chat"}

    assert allowed(
        provisioner, "bedrock:TagResource", OURS, tag_context({STACK_TAG: STACK, "Application": "Bots"}, ours)
    )
    # without its stack tag in the request it may not (BedrockProfiles.retag always sends it)
    assert not allowed(provisioner, "bedrock:TagResource", OURS, tag_context({"Application": "Bots"}, ours))
    # nor hand its profile to another stack
    assert not allowed(provisioner, "bedrock:TagResource", OURS, tag_context({STACK_TAG: "tollgate-prod"}, ours))


@pytest.mark.parametrize(
    "their_tags", [{STACK_TAG: "tollgate-prod", "tollgate:profile": "acme-chat"}, {"team": "search"}, {}]
)
def test_the_provisioner_can_neither_claim_nor_change_nor_delete_a_profile_it_does_not_own(
    provisioner: list[dict[str, Any]], their_tags: dict[str, str]
) -> None:
    # the attack: tag another stack's (or nobody's) profile with this stack's tag, then delete it
    claim = tag_context({STACK_TAG: STACK}, their_tags)
    assert not allowed(provisioner, "bedrock:TagResource", THEIRS, claim)
    assert not allowed(
        provisioner, "bedrock:UntagResource", THEIRS, tag_context({}, their_tags) | {"aws:TagKeys": ["team"]}
    )
    assert not allowed(provisioner, "bedrock:DeleteInferenceProfile", THEIRS, tag_context({}, their_tags))


def test_the_provisioner_deletes_and_untags_its_own_profiles_but_never_removes_the_stack_tag(
    provisioner: list[dict[str, Any]],
) -> None:
    ours = tag_context({}, {STACK_TAG: STACK, "team": "search"})

    assert allowed(provisioner, "bedrock:DeleteInferenceProfile", OURS, ours)
    assert allowed(provisioner, "bedrock:UntagResource", OURS, ours | {"aws:TagKeys": ["team"]})
    assert not allowed(provisioner, "bedrock:UntagResource", OURS, ours | {"aws:TagKeys": ["team", STACK_TAG]})
    # ownership is read from tags, so reading them is not conditioned
    assert allowed(provisioner, "bedrock:ListTagsForResource", THEIRS, {})


def test_the_gateway_invokes_only_this_stacks_profiles(template: dict[str, Any]) -> None:
    gateway = role_statements(template, "GatewayFunction")

    assert allowed(gateway, "bedrock:InvokeModel", OURS, tag_context({}, {STACK_TAG: STACK}))
    assert not allowed(gateway, "bedrock:InvokeModel", THEIRS, tag_context({}, {STACK_TAG: "tollgate-prod"}))


# --------------------------------------------------------------------------- the tenant table


def keys(partition: str) -> dict[str, list[str]]:
    return {"dynamodb:LeadingKeys": [partition]}


def test_the_gateway_reads_the_profile_directory_and_never_a_key_hash(template: dict[str, Any]) -> None:
    gateway = role_statements(template, "GatewayFunction")

    assert allowed(gateway, "dynamodb:Query", TENANTS, keys(REGISTRY_PK))
    for action in READS:
        assert not allowed(gateway, action, TENANTS, keys(f"{KEY_PREFIX}0f63ab")), action
        assert not allowed(gateway, action, TENANTS, keys(STATE_PK)), action


def test_the_authorizer_can_only_get_key_items(template: dict[str, Any]) -> None:
    authorizer = role_statements(template, "AuthorizerFunction")

    assert allowed(authorizer, "dynamodb:GetItem", TENANTS, keys(f"{KEY_PREFIX}0f63ab"))
    assert not allowed(authorizer, "dynamodb:GetItem", TENANTS, keys(REGISTRY_PK))
    for action in ("dynamodb:Query", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert not allowed(authorizer, action, TENANTS, keys(f"{KEY_PREFIX}0f63ab")), action
    # and it can touch nothing else
    assert {a for s in authorizer for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
        "dynamodb:GetItem"
    }


def test_the_provisioner_writes_its_directory_and_state_but_never_key_items(provisioner: list[dict[str, Any]]) -> None:
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"):
        assert allowed(provisioner, action, TENANTS, keys(REGISTRY_PK)), action
        assert allowed(provisioner, action, TENANTS, keys(STATE_PK)), action
        assert not allowed(provisioner, action, TENANTS, keys(f"{KEY_PREFIX}0f63ab")), action


# --------------------------------------------------------------------------- usage plans and API keys

APIGW = f"arn:aws:apigateway:{REGION}::"


def test_the_provisioner_creates_only_usage_plans_and_api_keys_tagged_for_its_own_stack(
    provisioner: list[dict[str, Any]],
) -> None:
    ours, theirs = tag_context({STACK_TAG: STACK}, {}), tag_context({STACK_TAG: "tollgate-prod"}, {})
    for collection in ("/usageplans", "/apikeys"):
        assert allowed(provisioner, "apigateway:POST", APIGW + collection, ours)
        assert not allowed(provisioner, "apigateway:POST", APIGW + collection, theirs)
        assert not allowed(provisioner, "apigateway:POST", APIGW + collection, tag_context({}, {}))
        assert allowed(provisioner, "apigateway:GET", APIGW + collection, {})


def test_the_provisioner_changes_and_deletes_only_its_own_stacks_plans_and_keys(
    provisioner: list[dict[str, Any]],
) -> None:
    for resource in ("/usageplans/abc123", "/apikeys/k1", "/usageplans/abc123/keys"):
        for action in ("apigateway:PATCH", "apigateway:DELETE"):
            assert allowed(provisioner, action, APIGW + resource, tag_context({}, {STACK_TAG: STACK})), (
                action,
                resource,
            )
            assert not allowed(provisioner, action, APIGW + resource, tag_context({}, {STACK_TAG: "other"}))
    assert not allowed(provisioner, "apigateway:DELETE", f"{APIGW}/restapis/abc", tag_context({}, {STACK_TAG: STACK}))


def test_the_provisioner_stamps_only_the_usage_plan_key_on_key_items(provisioner: list[dict[str, Any]]) -> None:
    key_item = keys(f"{KEY_PREFIX}0f63ab")
    assert allowed(
        provisioner, "dynamodb:UpdateItem", TENANTS, {**key_item, "dynamodb:Attributes": ["pk", "sk", "usage_key"]}
    )
    assert not allowed(
        provisioner, "dynamodb:UpdateItem", TENANTS, {**key_item, "dynamodb:Attributes": ["pk", "sk", "status"]}
    )
    assert not allowed(provisioner, "dynamodb:PutItem", TENANTS, key_item)
    assert allowed(provisioner, "dynamodb:Query", f"{TENANTS}/index/by-tenant", keys("TENANT#acme"))


# --------------------------------------------------------------------------- actions function


def test_the_actions_function_may_move_and_disable_only_this_stacks_keys_and_write_only_status_and_actions(
    template: dict[str, Any],
) -> None:
    from tollgate.actions import action_pk, status_pk

    actions = role_statements(template, "ActionsFunction")
    ours, theirs = tag_context({}, {STACK_TAG: STACK}), tag_context({}, {STACK_TAG: "tollgate-prod"})
    for action, path in (
        ("apigateway:PATCH", "/apikeys/k1"),  # enable / disable
        ("apigateway:POST", "/usageplans/p1/keys"),  # onto the throttled twin
        ("apigateway:DELETE", "/usageplans/p1/keys/k1"),  # off its plan
    ):
        assert allowed(actions, action, APIGW + path, ours)
        assert not allowed(actions, action, APIGW + path, theirs)
    assert not allowed(actions, "apigateway:DELETE", APIGW + "/apikeys/k1", ours)  # never deletes a key
    assert not allowed(actions, "apigateway:PATCH", APIGW + "/usageplans/p1", ours)  # never changes a plan
    assert not allowed(actions, "apigateway:DELETE", APIGW + "/usageplans/p1", ours)
    assert allowed(actions, "apigateway:GET", APIGW + "/apikeys", {})
    assert allowed(actions, "sns:Publish", table_arn("TenantNoticeTopic"), {})
    control = table_arn("ControlTable")
    for pk in (status_pk("acme"), action_pk("acme")):
        assert allowed(actions, "dynamodb:UpdateItem", control, {"dynamodb:LeadingKeys": [pk]})
        assert allowed(actions, "dynamodb:PutItem", control, {"dynamodb:LeadingKeys": [pk]})
    assert not allowed(actions, "dynamodb:UpdateItem", control, {"dynamodb:LeadingKeys": ["BUDGET#acme"]})
    assert not allowed(actions, "dynamodb:DeleteItem", control, {"dynamodb:LeadingKeys": [status_pk("acme")]})
    assert not allowed(actions, "sns:Publish", table_arn("AdminTopic"), {})
