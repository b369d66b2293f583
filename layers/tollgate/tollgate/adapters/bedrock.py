"""Bedrock adapters: the Converse client (data plane) and inference profiles (control plane).

The gateway receives Converse requests in Bedrock's JSON wire format and must answer in it.
botocore only converts in the client direction (Python -> wire for requests, wire -> Python
for responses), so ``request_from_wire`` / ``response_to_wire`` walk botocore's own shape
model for the reverse: base64 blobs <-> bytes, epoch timestamps <-> datetime. That walk is
the one piece written by hand because no library does a server-side conversion.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.model import Shape

from tollgate.alarms import STACK_TAG
from tollgate.errors import BadRequest, ServiceUnavailable, TollgateError, UpstreamError, from_bedrock

# --------------------------------------------------------------------------- wire format


@functools.cache
def _converse_model() -> Any:
    return botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("Converse")


def _is_document(shape: Shape) -> bool:
    return bool(getattr(shape, "is_document_type", False) or shape.metadata.get("document"))


def _from_wire(shape: Shape | None, value: Any, place: str) -> Any:
    if shape is None or value is None or _is_document(shape):
        return value  # unknown members are left for botocore's validation to name
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise BadRequest(f"{place} must be a JSON object")
        members = shape.members  # type: ignore[attr-defined]
        return {k: _from_wire(members.get(k), v, f"{place}.{k}") for k, v in value.items()}
    if kind == "list":
        if not isinstance(value, list):
            raise BadRequest(f"{place} must be a JSON array")
        member = shape.member  # type: ignore[attr-defined]
        return [_from_wire(member, v, f"{place}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise BadRequest(f"{place} must be a JSON object")
        return {k: _from_wire(shape.value, v, f"{place}.{k}") for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "blob":
        if not isinstance(value, str):
            raise BadRequest(f"{place} must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{place} is not valid base64") from None
    return value


def _to_wire(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None or _is_document(shape):
        return value
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {k: _to_wire(members.get(k), v) for k, v in value.items() if k != "ResponseMetadata"}
    if kind == "list":
        return [_to_wire(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if kind == "map":
        return {k: _to_wire(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if kind == "blob" and isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "timestamp" and isinstance(value, datetime):
        return value.timestamp()
    return value


def request_from_wire(body: Any) -> dict[str, Any]:
    """A Converse request body (parsed JSON) as boto3 ``converse()`` keyword arguments.

    ``modelId`` is not taken from the body: the gateway decides which model is called.
    """
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with Converse fields such as 'messages'")
    params = _from_wire(_converse_model().input_shape, body, "body")
    params.pop("modelId", None)
    return dict(params)


def response_to_wire(response: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_to_wire(_converse_model().output_shape, dict(response)))


def validate_request(params: Mapping[str, Any]) -> None:
    """Run botocore's parameter validation now, before anything is called or charged."""
    from botocore.validate import ParamValidator

    # Converse only makes 'messages' optional for prompt-management ARNs, which a gateway
    # calling through inference profiles never uses.
    if not params.get("messages"):
        raise BadRequest("'messages' is required: a non-empty list of Converse messages")

    report = ParamValidator().validate({"modelId": "validation-only", **params}, _converse_model().input_shape)
    if report.has_errors():
        raise BadRequest(report.generate_report().replace("\n", " ").strip())


# --------------------------------------------------------------------------- data plane


class BedrockModelClient:
    """Converse through an application inference profile ARN; Bedrock errors become TollgateErrors.

    The client must make one attempt only (``aws_client(..., limits=budget.bedrock)``): botocore
    would retry a read timeout, and a call that timed out may have been billed. What is known not
    to be billed (throttled, unavailable, connection refused) is marked ``unbilled`` for the
    gateway to retry within its budget.
    """

    def __init__(self, client: Any):
        self._client = client

    def converse(self, model_arn: str, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._client.converse(modelId=model_arn, **params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise from_bedrock(str(error.get("Code", "")), str(error.get("Message", ""))) from exc
        except ParamValidationError as exc:
            raise BadRequest(str(exc).replace("\n", " ")) from exc
        except ReadTimeoutError as exc:
            waited = self._client.meta.config.read_timeout
            raise UpstreamError(
                "ModelTimeoutException", 408, f"the model did not answer within {waited:g} s; nothing was charged"
            ) from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            # No connection was made, so nothing was sent (EndpointConnectionError covers refused
            # and unresolvable; ConnectTimeoutError is one of them).
            raise ServiceUnavailable("Bedrock could not be reached; retry later", unbilled=True) from exc
        except BotoCoreError as exc:
            raise TollgateError(f"calling Bedrock failed: {type(exc).__name__}") from exc
        response.pop("ResponseMetadata", None)
        return response


# --------------------------------------------------------------------------- control plane


@dataclass(frozen=True)
class OwnedProfile:
    """An application inference profile that carries this stack's tag."""

    arn: str
    name: str
    tags: dict[str, str]

    @property
    def profile(self) -> str:
        return self.tags.get("tollgate:profile", "")

    @property
    def source_arn(self) -> str:
        return self.tags.get("tollgate:source", "")


class BedrockProfiles:
    def __init__(self, client: Any):
        self._client = client

    def owned(self, stack_tag: tuple[str, str]) -> list[OwnedProfile]:
        key, value = stack_tag
        found = []
        token: str | None = None
        while True:
            page = self._client.list_inference_profiles(
                typeEquals="APPLICATION", maxResults=100, **({"nextToken": token} if token else {})
            )
            for summary in page.get("inferenceProfileSummaries", []):
                tags = self.tags(summary["inferenceProfileArn"])
                if tags.get(key) == value:
                    found.append(OwnedProfile(summary["inferenceProfileArn"], summary["inferenceProfileName"], tags))
            token = page.get("nextToken")
            if not token:
                return found

    def tags(self, arn: str) -> dict[str, str]:
        listed = self._client.list_tags_for_resource(resourceARN=arn).get("tags", [])
        return {t["key"]: t["value"] for t in listed}

    def create(self, name: str, description: str, source_arn: str, tags: Mapping[str, str]) -> str:
        created = self._client.create_inference_profile(
            inferenceProfileName=name,
            description=description,
            modelSource={"copyFrom": source_arn},
            tags=[{"key": k, "value": v} for k, v in sorted(tags.items())],
        )
        return str(created["inferenceProfileArn"])

    def delete(self, arn: str) -> None:
        try:
            self._client.delete_inference_profile(inferenceProfileIdentifier=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    def retag(self, arn: str, current: Mapping[str, str], desired: Mapping[str, str]) -> bool:
        """Make the profile's tags ``desired`` (which names its stack); True when anything changed.

        The stack tag is sent with every TagResource, changed or not: the provisioner's role may
        tag a profile only when the request carries its own stack tag (aws:RequestTag, see
        template.yaml), and it never removes that tag.
        """
        if STACK_TAG not in desired:
            raise ValueError(f"the desired tags of {arn} must name its stack ({STACK_TAG})")
        stale = sorted(set(current) - set(desired))
        changed = {k: v for k, v in desired.items() if current.get(k) != v}
        if stale:
            self._client.untag_resource(resourceARN=arn, tagKeys=stale)
        if changed:
            sent = {**changed, STACK_TAG: desired[STACK_TAG]}
            self._client.tag_resource(resourceARN=arn, tags=[{"key": k, "value": v} for k, v in sorted(sent.items())])
        return bool(stale or changed)
