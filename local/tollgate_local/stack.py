"""The whole of Tollgate on this machine: ``make local`` / ``tollgate local``.

Started in this order, stopped in reverse:

1. moto server (the embedded AWS) and the Bedrock stand-in, each on a free loopback port;
2. the stack from template.yaml on moto (tollgate_local.cloudformation), and the functions'
   environment read back from moto's Lambda, as Lambda would set it;
3. the per-profile resources by the same provisioning code the custom resource runs;
4. the admin's mailbox (SNS -> .eml, subscribed to the admin topic), a key per tenant (and the
   key of events/), the stream poller and the metering fallback queue's poller (the template's
   event source mappings), the functions subscribed to topics (the notifier, through
   tollgate_local.sns_lambda), the API with its dashboard page, and the alarm evaluator. The
   functions' log lines go through the template's metric filters.

Everything it starts is written to ``.tollgate/local.json`` (PRODUCT.md's format); the
functions' variables for ``sam local invoke`` to ``.tollgate/sam-env*.json`` (tollgate_local.sam_local).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tollgate.adapters import aws_client
from tollgate.adapters.dynamodb import DynamoKeyStore
from tollgate.config import ConfigBundle
from tollgate.keys import issue_key
from tollgate.provisioning import Targets, targets_from
from tollgate.settings import ProvisionerSettings
from tollgate.tenant_provisioning import contact_filter_policy, tenant_targets_from
from tollgate.wiring.provisioner import provisioner, tenant_provisioner

from tollgate_local.alarms import AlarmEvaluator
from tollgate_local.bedrock import BedrockStandIn, StandInServer
from tollgate_local.cloudformation import MOTO_SKIPS, Deployed, deploy
from tollgate_local.dashboard_page import render_dashboard
from tollgate_local.esm import MappingSettings, StreamMapping
from tollgate_local.front import ApiServer, ApiSettings, LocalApi, html
from tollgate_local.logfilters import metric_filters_by_function
from tollgate_local.mailbox import Mailbox
from tollgate_local.queues import QueueMapping, QueueMappingSettings
from tollgate_local.runtime import LocalFunction, LogSink, install_router
from tollgate_local.sam_local import write_env_files
from tollgate_local.sample_events import SAMPLE_TENANT, sample_key_record
from tollgate_local.schedules import ScheduledInvoker, schedule_interval, scheduled_functions
from tollgate_local.sns_lambda import RETRY_DELAYS, AsyncInvoker, InvokeConfig, SnsBridge, Subscriber, subscribers
from tollgate_local.streams import StreamReader
from tollgate_local.template import REPO_ROOT, load_template
from tollgate_local.usage_plans import UsagePlanThrottle

log = logging.getLogger("tollgate.local")

STACK_NAME = "tollgate-local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DEFAULT_PORT = 3000
#: How often alarms are evaluated under `make local` (CloudWatch evaluates about once a minute).
DEFAULT_ALARM_INTERVAL = 5.0
ALARM_INTERVAL_SECONDS = float(os.environ.get("TOLLGATE_ALARM_INTERVAL", DEFAULT_ALARM_INTERVAL))


class LocalStackError(RuntimeError):
    """The local stack cannot start; the message says why and what to do."""


def _check_port(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise LocalStackError(
                f"port {port} is in use (another `make local`?). "
                "Stop it, or choose another port: TOLLGATE_PORT=3001 make local"
            ) from None


def _function_directory(sam: dict[str, Any], logical: str) -> str:
    code = sam["Resources"][logical]["Properties"]["CodeUri"]
    return Path(code).name


@dataclass
class LocalStack:
    root: Path = REPO_ROOT
    port: int = DEFAULT_PORT
    state_dir: Path | None = None
    alarm_interval: float = ALARM_INTERVAL_SECONDS
    #: How often functions with a Schedule event run (TOLLGATE_SCHEDULE_INTERVAL; deployed: their own rate).
    schedule_interval: float = field(default_factory=schedule_interval)
    #: Waits between retries of a failed asynchronous invocation (Lambda's: about 1 and 2 minutes).
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    #: The functions, warm, by logical name; and the asynchronous invokers of those subscribed to a topic.
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    invokers: dict[str, AsyncInvoker] = field(default_factory=dict)
    _stops: list[Any] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.state_dir or self.root / ".tollgate"

    # ------------------------------------------------------------------ start

    def start(self) -> dict[str, Any]:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, Any]:
        # a bad config (or one unpriced in the local region) stops everything before anything starts
        bundle = ConfigBundle.load_dir(self.root, region=REGION)
        if self.port:
            _check_port(self.port)
        install_router()  # before any handler module makes its logger
        self._fresh_state_dir()
        from tollgate_local.moto_server import LocalMotoServer

        moto = LocalMotoServer("127.0.0.1", 0)
        moto.start()
        self._stops.append(moto.stop)
        aws_url = moto.url
        standin = BedrockStandIn(region=REGION, account_id=ACCOUNT_ID)
        standin_server: StandInServer = standin.serve("127.0.0.1", 0)
        self._stops.append(standin_server.stop)
        self._environment(aws_url, standin_server.url)
        services = (
            "apigateway",
            "s3",
            "cloudformation",
            "cloudwatch",
            "sns",
            "sqs",
            "dynamodb",
            "dynamodbstreams",
            "lambda",
            "logs",
        )
        clients = {name: aws_client(name, REGION) for name in services}
        deployed = deploy(clients, STACK_NAME, {}, region=REGION, account_id=ACCOUNT_ID)
        variables = self._function_environment(clients["lambda"], deployed)
        sam_env = write_env_files(self.state, variables, aws_url=aws_url, bedrock_url=standin_server.url)
        for path in sam_env.values():  # their ports die with this run, as local.json's do
            self._stops.append(lambda path=path: path.unlink(missing_ok=True))
        summary, targets = self._provision(bundle, deployed)

        mailbox = Mailbox(self.state / "outbox")
        mailbox.start()
        self._stops.append(mailbox.stop)
        clients["sns"].subscribe(
            TopicArn=targets.admin_topic, Protocol="http", Endpoint=mailbox.url_for(bundle.config.admin_email)
        )  # stands for the admin's email subscription, which moto accepts and never delivers
        for tenant in bundle.tenants():  # and each tenant's contact, with the deployed subscription's filter policy
            if tenant.contact_email:
                clients["sns"].subscribe(
                    TopicArn=self._notice_topic,
                    Protocol="http",
                    Endpoint=mailbox.url_for(tenant.contact_email),
                    # moto applies filter policies to every protocol: only this tenant's notices reach it.
                    Attributes={
                        "FilterPolicy": contact_filter_policy(tenant.tenant_id),
                        "FilterPolicyScope": "MessageAttributes",
                    },
                )

        keys = self._issue_keys(bundle, deployed)
        sam = load_template()
        sink = LogSink(self.state / "logs", clients["cloudwatch"], metric_filters_by_function(sam, deployed.resolve))
        subscribed = subscribers(deployed.split.left_out)
        subscribed_functions = [s.function for s in subscribed]
        scheduled = scheduled_functions(sam)
        functions = {
            logical: LocalFunction(
                logical,
                _function_directory(sam, logical),
                deployed.physical[logical],
                sink,
                region=REGION,
                account_id=ACCOUNT_ID,
                timeout=float(
                    sam["Resources"][logical]["Properties"].get("Timeout", sam["Globals"]["Function"].get("Timeout", 3))
                ),
            )
            for logical in (
                "AuthorizerFunction",
                "GatewayFunction",
                "AggregatorFunction",
                "MeteringRecoveryFunction",
                *subscribed_functions,
                *(f for f in scheduled if f not in subscribed_functions),
            )
        }
        self.functions = functions
        self._stream_mapping(clients, deployed, functions["AggregatorFunction"])  # runs until stop()
        self._queue_mappings(clients, deployed, functions)  # run until stop()
        self._subscribe_functions(clients, deployed, subscribed, functions)
        evaluator = AlarmEvaluator(clients["cloudwatch"], clients["sns"], region=REGION, account_id=ACCOUNT_ID)
        publisher = _QueueMetrics(clients, deployed)

        parameters = deployed.parameters
        api_properties = sam["Resources"]["GatewayApi"]["Properties"]
        usage_plans = None
        if api_properties.get("Auth", {}).get("ApiKeyRequired"):  # as API Gateway: the key's usage plan applies
            usage_plans = UsagePlanThrottle(
                aws_client("apigateway", REGION), deployed.physical["GatewayApi"], deployed.resolve({"Ref": "Stage"})
            )
        api = LocalApi(
            ApiSettings.from_template(sam, parameters),
            functions["AuthorizerFunction"],
            functions["GatewayFunction"],
            region=REGION,
            usage_plans=usage_plans,
        )
        server = ApiServer(
            api,
            port=self.port,
            extra_routes={
                "/_local/dashboard": html(
                    lambda: render_dashboard(
                        clients["cloudwatch"], targets.dashboard_name, alarm_states=evaluator.states()
                    )
                ),
            },
        )
        server.start()
        self._stops.append(server.stop)
        api_url = f"{server.url}"
        # What the notifier's mails link to and tell to run, here (read at its first invocation, below)
        os.environ.update(DASHBOARD_URL=f"{api_url}/_local/dashboard", TOLLGATE_LOCAL="1")
        evaluator_thread = Ticker(self.alarm_interval, [publisher.publish, evaluator.evaluate], "tollgate-alarms")
        evaluator_thread.start()
        self._stops.append(evaluator_thread.stop)
        if scheduled:  # EventBridge's schedules (tollgate_local.schedules), on one local interval
            tasks = [
                ScheduledInvoker(functions[f].invoke, f"{STACK_NAME}-{f}-{events[0]}", REGION, ACCOUNT_ID)
                for f, events in scheduled.items()
            ]
            schedule_thread = Ticker(self.schedule_interval, list(tasks), "tollgate-schedules")
            schedule_thread.start()
            self._stops.append(schedule_thread.stop)
        state = {
            "api_url": api_url,
            "aws_endpoint_url": aws_url,
            "region": REGION,
            "tenants": {
                tenant: {"api_key": keys[tenant], "profiles": [p.name for p in bundle.profiles_of(tenant)]}
                for tenant in sorted(bundle.config.tenants)
            },
            "resources": dict(sorted(deployed.physical.items())),
            "parameters": dict(sorted(parameters.items())),
            "outbox": str(_relative(self.state / "outbox", self.root)),
            # beyond PRODUCT.md's keys: where else to look
            "stack_name": STACK_NAME,
            "bedrock_endpoint_url": standin_server.url,
            "dashboard_url": f"{api_url}/_local/dashboard",
            "logs": str(_relative(self.state / "logs", self.root)),
            "provisioning": summary,
            # `sam local invoke ... --env-vars <file>`: README "sam local invoke"
            "sam_env_vars": {network: str(_relative(path, self.root)) for network, path in sam_env.items()},
            "state_file": str(_relative(self.state / "local.json", self.root)),
        }
        state_file = self.state / "local.json"
        state_file.write_text(json.dumps(state, indent=2) + "\n")
        # Removed at stop (only ours: a second `make local` that fails to start leaves the first's alone),
        # so that commands then say "start the local stack" rather than "connection refused".
        self._stops.append(lambda: state_file.unlink(missing_ok=True))
        return state

    def _fresh_state_dir(self) -> None:
        """Each run starts empty (moto keeps nothing): old mail and logs would only mislead."""
        for sub in ("outbox", "logs"):
            folder = self.state / sub
            if folder.exists():
                for item in folder.iterdir():
                    if item.is_file():
                        item.unlink()
            folder.mkdir(parents=True, exist_ok=True)
        (self.state / "local.json").unlink(missing_ok=True)

    @staticmethod
    def _environment(aws_url: str, bedrock_url: str) -> None:
        """The only difference from Lambda: endpoints (and dummy credentials, which moto ignores)."""
        os.environ.update(
            AWS_ENDPOINT_URL=aws_url,
            AWS_ENDPOINT_URL_BEDROCK=bedrock_url,
            AWS_ENDPOINT_URL_BEDROCK_RUNTIME=bedrock_url,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
            os.environ.pop(name, None)

    def _function_environment(self, lambda_client: Any, deployed: Deployed) -> dict[str, dict[str, str]]:
        """Each function's variables as moto's Lambda holds them (Refs resolved), for the handlers.

        The functions share this process, so their variables must agree; the config layer's
        mount point /opt/tollgate-config is the repository's own config.json and models.json.
        Returns them by function (logical id), as `sam local invoke` needs them.
        """
        merged: dict[str, tuple[str, str]] = {}
        by_function: dict[str, dict[str, str]] = {}
        for logical, physical in deployed.physical.items():
            resource = deployed.split.for_moto["Resources"].get(logical, {})
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            config = lambda_client.get_function_configuration(FunctionName=physical)
            own = {key: str(value) for key, value in config.get("Environment", {}).get("Variables", {}).items()}
            by_function[logical] = own
            for key, value in own.items():
                if key in merged and merged[key][1] != value:
                    raise LocalStackError(
                        f"{logical} and {merged[key][0]} set {key} differently; local mode runs them in one process"
                    )
                merged[key] = (logical, value)
        os.environ.update({key: value for key, (_, value) in merged.items()})
        os.environ["TOLLGATE_CONFIG_DIR"] = str(self.root)
        return by_function

    def _provision(self, bundle: ConfigBundle, deployed: Deployed) -> tuple[str, Targets]:
        """What the custom resource does on Create, with its properties from the template."""
        (custom,) = [r for r in deployed.split.left_out.values() if r["Type"] == "Custom::TollgateProfiles"]
        properties = deployed.resolve({k: v for k, v in custom["Properties"].items() if k != "ServiceToken"})
        targets = targets_from(properties)
        report = provisioner(ProvisionerSettings.from_env()).reconcile(bundle, targets)
        (tenants,) = [r for r in deployed.split.left_out.values() if r["Type"] == "Custom::TollgateTenants"]
        properties = deployed.resolve({k: v for k, v in tenants["Properties"].items() if k != "ServiceToken"})
        tenant_targets = tenant_targets_from(properties)
        tenant_report = tenant_provisioner(ProvisionerSettings.from_env()).reconcile(bundle, tenant_targets)
        self._notice_topic = tenant_targets.notice_topic_arn
        return f"{report.summary()}; tenants: {tenant_report.summary()}", targets

    def _subscribe_functions(
        self,
        clients: dict[str, Any],
        deployed: Deployed,
        subscribed: list[Subscriber],
        functions: dict[str, LocalFunction],
    ) -> None:
        """The template's SNS subscriptions of functions, through the bridge (tollgate_local.sns_lambda)."""
        if not subscribed:
            return
        bridge = SnsBridge()
        bridge.start()
        self._stops.append(bridge.stop)
        for subscriber in subscribed:
            config = InvokeConfig.of(subscriber.function, deployed.split.left_out)
            invoker = AsyncInvoker(
                functions[subscriber.function],
                config,
                sqs_client=clients["sqs"],
                # a queue's physical id is its URL
                queue_url=deployed.physical[config.on_failure_queue] if config.on_failure_queue else None,
                retry_delays=self.retry_delays,
            )
            invoker.start()
            self._stops.append(invoker.stop)
            self.invokers[subscriber.function] = invoker
            subscription = clients["sns"].subscribe(
                TopicArn=deployed.physical[subscriber.topic],
                Protocol="http",
                Endpoint=bridge.url_for(subscriber.function),
                ReturnSubscriptionArn=True,
            )
            bridge.route(subscriber.function, invoker, subscription["SubscriptionArn"])

    @staticmethod
    def _issue_keys(bundle: ConfigBundle, deployed: Deployed) -> dict[str, str]:
        """A fresh key per tenant, and the key of events/ (local only), so that the sample events
        work with `sam local invoke` against this stack."""
        keys = DynamoKeyStore(aws_client("dynamodb", REGION), deployed.physical["TenantTable"])
        issued = {}
        for tenant in sorted(bundle.config.tenants):
            key = issue_key(tenant, datetime.now(UTC), label="make local")
            keys.add(key.record)
            issued[tenant] = key.secret
        if SAMPLE_TENANT in bundle.config.tenants:
            keys.add(sample_key_record(datetime.now(UTC)))
        return issued

    def _stream_mapping(self, clients: dict[str, Any], deployed: Deployed, aggregator: LocalFunction) -> StreamMapping:
        (properties,) = [
            r["Properties"]
            for r in deployed.split.left_out.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"]["EventSourceArn"].get("Fn::GetAtt", [None, None])[1] == "StreamArn"
        ]
        settings = MappingSettings.from_template(properties)
        table = deployed.physical["UsageTable"]
        stream_arn = clients["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
        mapping = StreamMapping(
            settings,
            StreamReader(clients["dynamodbstreams"], stream_arn, REGION),
            aggregator.invoke,
            sqs_client=clients["sqs"],
            queue_url=deployed.physical["AggregationFailureQueue"],  # a queue's physical id is its URL
            function_name=aggregator.physical_name,
            # the aggregator's own context, so that an on-failure message's requestId is the
            # aws_request_id of the failed invocation's log lines
            context_factory=aggregator.new_context,
        )
        mapping.start()
        self._stops.append(mapping.stop)
        return mapping

    def _queue_mappings(self, clients: dict[str, Any], deployed: Deployed, functions: dict[str, LocalFunction]) -> None:
        """The template's SQS event source mappings (the metering fallback queue -> recovery function)."""
        for resource in deployed.split.left_out.values():
            properties = resource["Properties"] if resource["Type"] == "AWS::Lambda::EventSourceMapping" else {}
            source = properties.get("EventSourceArn", {}).get("Fn::GetAtt", [None, None])
            if source[1] != "Arn":
                continue
            function = functions[properties["FunctionName"]["Ref"]]
            mapping = QueueMapping(
                QueueMappingSettings.from_template(properties),
                clients["sqs"],
                deployed.physical[source[0]],  # a queue's physical id is its URL
                function.invoke,
                function_name=function.physical_name,
                region=REGION,
                account_id=ACCOUNT_ID,
                context_factory=function.new_context,
            )
            mapping.start()
            self._stops.append(mapping.stop)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("while stopping")


class _QueueMetrics:
    """What SQS does every minute in AWS: ApproximateNumberOfMessagesVisible into CloudWatch (AWS/SQS)."""

    def __init__(self, clients: dict[str, Any], deployed: Deployed):
        self._sqs = clients["sqs"]
        self._cloudwatch = clients["cloudwatch"]
        self._queues = [
            deployed.physical[n]
            for n, r in deployed.split.for_moto["Resources"].items()
            if r["Type"] == "AWS::SQS::Queue" and n in deployed.physical
        ]

    def publish(self) -> None:
        for url in self._queues:
            visible = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            count = int(visible["Attributes"]["ApproximateNumberOfMessages"])  # the metric AWS/SQS calls ...Visible
            self._cloudwatch.put_metric_data(
                Namespace="AWS/SQS",
                MetricData=[
                    {
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [{"Name": "QueueName", "Value": url.rsplit("/", 1)[1]}],
                        "Value": count,
                        "Unit": "Count",
                    }
                ],
            )


class Ticker:
    """Runs callables every ``interval`` seconds in a daemon thread; errors are logged, never fatal."""

    def __init__(self, interval: float, tasks: list[Any], name: str):
        self._interval = interval
        self._tasks = tasks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for task in self._tasks:
                try:
                    task()
                except Exception:
                    log.exception("periodic task failed")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def banner(state: dict[str, Any], root: Path) -> str:
    tenants = "\n".join(
        f"    {tenant:<10} {info['api_key']}   profiles: {', '.join(info['profiles'])}"
        for tenant, info in state["tenants"].items()
    )
    return f"""
Tollgate is running locally (stack {state["stack_name"]}, region {state["region"]}).

  API            {state["api_url"]}          (POST /model/<profile>/converse, POST /invoke)
  dashboard      {state["dashboard_url"]}
  admin mailbox  {state["outbox"]}/           (one .eml per alarm notification)
  AWS (moto)     {state["aws_endpoint_url"]}
  Bedrock        {state["bedrock_endpoint_url"]}   (faults: tollgate faults --throttle 0.2)
  logs           {state["logs"]}/
  sam local      {state["sam_env_vars"]["host network"]}    (sam local invoke --env-vars; README "sam local invoke")
  everything     {state["state_file"]}
  provisioning   {state["provisioning"]}

  tenant keys:
{tenants}

In another terminal:   make load        (a workload, then the cost report)
Stop with Ctrl-C.
"""


def _quiet_known_warnings() -> None:
    """Hide the warnings that are expected and handled, so that a real one stands out.

    moto's CloudFormation warns (as a log line and as a UserWarning) for each resource type it
    skips: tollgate_local.cloudformation handles those (MOTO_SKIPS). samtranslator warns about
    a feature toggle it looks up without a config. The provisioner's "reconciled" line is
    what the banner's "provisioning" line says.
    """
    skipped = "|".join(re.escape(kind) for kind in MOTO_SKIPS)
    warnings.filterwarnings("ignore", message=rf"Tried to parse ({skipped}) but", category=UserWarning)
    known = re.compile(rf"No Moto CloudFormation support for ({skipped})$")
    logging.getLogger("moto").addFilter(lambda record: not known.match(record.getMessage()))
    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("tollgate.tollgate.provisioning").setLevel(logging.WARNING)  # the banner has its summary


def run_foreground(port: int | None = None, root: Path = REPO_ROOT, state_dir: Path | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _quiet_known_warnings()
    chosen = port if port is not None else int(os.environ.get("TOLLGATE_PORT", DEFAULT_PORT))
    stack = LocalStack(root=root.resolve(), port=chosen, state_dir=state_dir.resolve() if state_dir else None)
    started = time.monotonic()
    stopping = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell may start us with it ignored
        signal.signal(stop_signal, lambda *_: stopping.set())
    try:
        state = stack.start()
    except LocalStackError as error:
        print(f"error: {error}")  # noqa: T201 - the command's own output
        return 2
    print(banner(state, root) + f"(started in {time.monotonic() - started:.1f} s)", flush=True)  # noqa: T201
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)  # noqa: T201
        stack.stop()
        print("stopped; ports freed.", flush=True)  # noqa: T201
    return 0
