"""The local SQS event source mapping: its settings come from template.yaml, failures as Lambda reads them."""

from __future__ import annotations

from typing import Any

import pytest
from tollgate_local.queues import QueueMappingSettings, failed_message_ids
from tollgate_local.template import queue_mappings

RECORDS = [{"messageId": "a"}, {"messageId": "b"}]


def test_settings_come_from_the_templates_mapping() -> None:
    (properties,) = queue_mappings().values()
    assert properties["FunctionName"] == {"Ref": "MeteringRecoveryFunction"}
    assert QueueMappingSettings.from_template(properties) == QueueMappingSettings(
        batch_size=10, report_batch_item_failures=True
    )


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"MaximumBatchingWindowInSeconds": 5}, "MaximumBatchingWindowInSeconds"),
        ({"BatchSize": 100}, "only 1..10"),
        ({"FilterCriteria": {"Filters": []}}, "FilterCriteria"),
        ({"ScalingConfig": {"MaximumConcurrency": 2}}, "ScalingConfig"),
        ({"Enabled": False}, "disabled"),
    ],
)
def test_what_is_not_emulated_is_refused(properties: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QueueMappingSettings.from_template(properties)


@pytest.mark.parametrize(
    ("response", "kept"),
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None),  # not in the batch: the whole batch failed
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ("not an object", None),
    ],
)
def test_a_failure_report_keeps_the_named_messages_and_an_invalid_one_keeps_all(
    response: Any, kept: set[str] | None
) -> None:
    assert failed_message_ids(response, RECORDS) == kept
