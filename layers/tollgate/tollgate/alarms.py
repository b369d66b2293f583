"""The three alarms of every profile, as pure data (the provisioner puts them).

Names follow the reference sample, so existing runbooks keep working:
``BedrockTokenCostAlarm-{profile}``, ``BedrockTokensPerMinuteAlarm-{profile}`` and
``BedrockRequestsPerMinuteAlarm-{profile}``. Each watches one plain metric (no metric math),
with the profile's own threshold from config.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate.config import ConfigBundle, ResolvedProfile
from tollgate.telemetry import MetricName, MetricRef, profile_dimensions

COST_ALARM = "BedrockTokenCostAlarm-{profile}"
TOKENS_ALARM = "BedrockTokensPerMinuteAlarm-{profile}"
REQUESTS_ALARM = "BedrockRequestsPerMinuteAlarm-{profile}"
ALARM_NAME_FORMATS = (COST_ALARM, TOKENS_ALARM, REQUESTS_ALARM)

STACK_TAG = "tollgate:stack"


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    description: str
    metric: MetricRef
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    profile: str

    def put_metric_alarm_args(self, topic_arn: str, stack: str) -> dict[str, Any]:
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "ActionsEnabled": True,
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
            "Namespace": self.metric.namespace,
            "MetricName": self.metric.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.metric.dimensions],
            "Statistic": self.statistic,
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.treat_missing_data,
            "Tags": [{"Key": STACK_TAG, "Value": stack}, {"Key": "tollgate:profile", "Value": self.profile}],
        }


def _spec(
    profile: ResolvedProfile,
    namespace: str,
    name_format: str,
    metric: MetricName,
    period: int,
    threshold: float,
    what: str,
) -> AlarmSpec:
    dims = tuple(profile_dimensions(profile.tenant_id, profile.name).items())
    return AlarmSpec(
        name=name_format.format(profile=profile.name),
        description=f"Tollgate: {what} of profile {profile.name} (tenant {profile.tenant_id}) "
        f"above {threshold:g}. Thresholds live in config.json.",
        metric=MetricRef(namespace, str(metric), dims),
        statistic="Sum",
        period=period,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=threshold,
        comparison="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        profile=profile.name,
    )


def alarms_for(profile: ResolvedProfile, namespace: str) -> list[AlarmSpec]:
    return [
        _spec(
            profile,
            namespace,
            COST_ALARM,
            MetricName.COST_USD,
            300,
            float(profile.cost_threshold),
            "token cost in USD over 5 minutes",
        ),
        _spec(
            profile,
            namespace,
            TOKENS_ALARM,
            MetricName.TOTAL_TOKENS,
            60,
            float(profile.tokens_per_min_threshold),
            "tokens per minute",
        ),
        _spec(
            profile,
            namespace,
            REQUESTS_ALARM,
            MetricName.REQUESTS,
            60,
            float(profile.requests_per_min_threshold),
            "requests per minute",
        ),
    ]


def alarm_specs(bundle: ConfigBundle, namespace: str) -> list[AlarmSpec]:
    return [spec for profile in bundle.profiles() for spec in alarms_for(profile, namespace)]


def alarm_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"
