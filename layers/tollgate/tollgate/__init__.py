"""Tollgate: per-tenant cost tracking and guard rails for Amazon Bedrock.

This package is what the Lambda functions share (it ships as the TollgateLayer). The pure
domain modules (config, pricing, usage, rollup, telemetry, alarms, dashboard, keys) import no
boto3; AWS access lives in ``tollgate.adapters`` behind the small interfaces in
``tollgate.ports``.
"""

__version__ = "0.1.0"
