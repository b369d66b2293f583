"""template.yaml's notification path says what the code assumes: alarms -> AlertTopic -> notifier -> AdminTopic.

And when the notifier itself fails: Lambda's retries, its on-failure queue, and an alarm on that
queue that mails the admin directly (not through the notifier, which is what failed).
"""

from __future__ import annotations

from typing import Any

from tollgate.settings import NotifierSettings
from tollgate_local.template import load_template, resources_of_type

ADMIN, ALERT = {"Ref": "AdminTopic"}, {"Ref": "AlertTopic"}


def resources() -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"]
    return found


def notifier() -> dict[str, Any]:
    properties: dict[str, Any] = resources()["NotifierFunction"]["Properties"]
    return properties


def test_the_notifier_listens_to_the_alert_topic_and_may_publish_only_to_the_admin_topic() -> None:
    events = notifier()["Events"].values()
    assert [e["Properties"]["Topic"] for e in events if e["Type"] == "SNS"] == [ALERT]
    statements = [s for policy in notifier()["Policies"] for s in policy["Statement"]]
    publish = [s for s in statements if "sns:Publish" in str(s["Action"])]
    assert [s["Resource"] for s in publish] == [ADMIN]


def test_the_admins_email_is_the_admin_topics_and_the_provisioner_is_told_so() -> None:
    properties = resources()["ProfileProvisioning"]["Properties"]
    assert (properties["TopicArn"], properties["AdminTopicArn"]) == (ALERT, ADMIN)
    # no e-mail subscription in the template itself: the provisioner manages it from config.json
    subscriptions = resources_of_type(load_template(), "AWS::SNS::Subscription")
    assert all(s["Properties"].get("Protocol") != "email" for s in subscriptions.values())


def test_a_failed_notification_is_kept_and_its_alarm_mails_the_admin_directly() -> None:
    invoke = notifier()["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] >= 1
    on_failure = invoke["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = on_failure["Destination"]["Fn::GetAtt"][0]
    assert resources()[queue]["Type"] == "AWS::SQS::Queue"
    watching = [
        alarm["Properties"]
        for alarm in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").values()
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        in alarm["Properties"].get("Dimensions", [])  # a metric filter's metric has none
    ]
    assert len(watching) == 1
    (alarm,) = watching
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        0,
    )
    assert alarm["AlarmActions"] == alarm["OKActions"] == [ADMIN]


def test_every_other_alarm_of_the_template_goes_through_the_notifier() -> None:
    queue = notifier()["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    for name, alarm in resources_of_type(load_template(), "AWS::CloudWatch::Alarm").items():
        if queue in str(alarm["Properties"].get("Dimensions", [])):
            continue
        assert alarm["Properties"]["AlarmActions"] == [ALERT], name


def test_the_dashboard_link_in_the_mails_is_the_stacks_dashboard_url_output() -> None:
    variables = notifier()["Environment"]["Variables"]
    assert variables["DASHBOARD_URL"] == load_template()["Outputs"]["DashboardUrl"]["Value"]


def test_the_template_sets_every_variable_the_notifiers_settings_need() -> None:
    template = load_template()
    common = template["Globals"]["Function"]["Environment"]["Variables"]
    variables = {**common, **notifier()["Environment"]["Variables"]}
    resolved = {name: value if isinstance(value, str) else f"<{name}>" for name, value in variables.items()}
    settings = NotifierSettings.from_env({**resolved, "AWS_REGION": "us-east-1"})
    assert settings.admin_topic_arn == "<ADMIN_TOPIC_ARN>"
    assert settings.local is False  # only `tollgate local` sets TOLLGATE_LOCAL
