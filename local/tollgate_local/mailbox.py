"""The admin's mailbox in local mode: SNS notifications as e-mail files a mail client opens.

moto accepts e-mail subscriptions but delivers nothing. So local mode subscribes the
admin's address as an *HTTP* subscription to :meth:`Mailbox.url_for` (``address``): moto
POSTs every message published to the topic there, in the standard SNS envelope, and the
mailbox writes the e-mail SNS would have sent to that address as an RFC 5322 ``.eml`` file
in ``outbox``, named ``<UTC yyyymmddTHHMMSS>-<seq>-<slug of the subject>.eml``.

The e-mail is the one SNS's e-mail protocol sends: From ``AWS Notifications
<no-reply@sns.amazonaws.com>``, the published Subject (SNS's default "AWS Notification
Message" without one), and for a CloudWatch alarm the text CloudWatch alarm e-mails carry
(the "You are receiving this email because ..." sentence, Alarm Details, Threshold,
Monitored Metric, State Change Actions); any other message as published. Then SNS's
footer with the unsubscribe link.

Differences from SNS: the alarm JSON is also attached as ``alarm.json`` (SNS e-mails have
no attachment) so that scripts need not parse the text; the unsubscribe link names the
subscription from the envelope and unsubscribes nothing; confirmation requests
(``SubscriptionConfirmation``) are logged, not mailed, since moto confirms HTTP
subscriptions itself. Serves IPv4 only.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tollgate_local.alarms import format_double

logger = logging.getLogger(__name__)

SENDER: Final = "AWS Notifications <no-reply@sns.amazonaws.com>"
#: CRLF line ends as RFC 5322 wants; lines up to its limit of 998, so that the text stays readable as is.
POLICY: Final = SMTP.clone(max_line_length=998)
DEFAULT_SUBJECT: Final = "AWS Notification Message"
MAIL_PATH: Final = "/mail/"

_FOOTER: Final = (
    "--\n"
    "If you wish to stop receiving notifications from this topic, please click or visit the link below "
    "to unsubscribe:\n{unsubscribe}\n\n"
    "Please do not reply directly to this email. If you have any questions or comments regarding this email, "
    "please contact us at https://aws.amazon.com/support\n"
)
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
#: The alarm message's Trigger.Statistic -> how the e-mail writes it.
_STATISTICS: Final = {
    "SUM": "Sum",
    "SAMPLE_COUNT": "SampleCount",
    "AVERAGE": "Average",
    "MAXIMUM": "Maximum",
    "MINIMUM": "Minimum",
}


class Mailbox:
    """An HTTP endpoint for SNS that files each notification as an e-mail in ``outbox``."""

    def __init__(self, outbox: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.outbox = outbox
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen (``port`` 0 picks a free one) and serve from a daemon thread."""
        if self._server is not None:
            raise RuntimeError("the mailbox is already running")
        self.outbox.mkdir(parents=True, exist_ok=True)
        self._sequence = itertools.count(len(self.messages()) + 1)
        server = _Server(self._address, _Handler)
        server.mailbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long shutdown() may wait
            name=f"mailbox:{server.server_port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wait for the thread and free the port. Safe to call twice."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the mailbox is not running")
        return self._server.server_port

    def url_for(self, address: str) -> str:
        """The HTTP endpoint to subscribe for mail to ``address``."""
        host = self._address[0] if self._address[0] not in ("", "0.0.0.0") else "127.0.0.1"
        return f"http://{host}:{self.port}{MAIL_PATH}{quote(address, safe='')}"

    def messages(self) -> list[Path]:
        """The delivered e-mails, oldest first."""
        return sorted(self.outbox.glob("*.eml"))

    # ------------------------------------------------------------------ delivery

    def deliver(self, envelope: Mapping[str, Any], address: str) -> Path:
        """File the SNS ``Notification`` envelope as the e-mail SNS sends to ``address``; its path."""
        received = datetime.now(UTC)
        subject = str(envelope.get("Subject") or DEFAULT_SUBJECT)
        raw = str(envelope.get("Message", ""))
        alarm = _alarm_message(raw)
        mail = EmailMessage(policy=POLICY)
        mail["From"] = SENDER
        mail["To"] = address
        mail["Subject"] = subject
        mail["Date"] = format_datetime(received)
        message_id = envelope.get("MessageId")
        mail["Message-ID"] = (
            f"<{message_id}@sns.amazonaws.com>" if message_id else make_msgid(domain="sns.amazonaws.com")
        )
        body = _alarm_text(alarm) if alarm is not None else raw.rstrip("\n") + "\n"
        mail.set_content(f"{body}\n\n{_FOOTER.format(unsubscribe=_unsubscribe_url(envelope, address))}")
        if alarm is not None:
            mail.add_attachment(raw.encode(), maintype="application", subtype="json", filename="alarm.json")
        data = mail.as_bytes()
        with self._lock:
            name = f"{received:%Y%m%dT%H%M%S}-{next(self._sequence):04d}-{_slug(subject)}.eml"
            partial = self.outbox / f".{name}.tmp"
            partial.write_bytes(data)
            path = partial.replace(self.outbox / name)
        logger.info("mail to %s: %s (%s)", address, subject, path.name)
        return path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mailbox: Mailbox


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        address = unquote(path[len(MAIL_PATH) :]) if path.startswith(MAIL_PATH) else ""
        if not address:
            self._answer(HTTPStatus.NOT_FOUND, f"POST to {MAIL_PATH}<address>")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            envelope = json.loads(body)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            self._answer(HTTPStatus.BAD_REQUEST, "expected an SNS message (JSON)")
            return
        kind = envelope.get("Type")
        if kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
            logger.info("mailbox %s: %s for %s (nothing to mail)", address, kind, envelope.get("TopicArn"))
            self._answer(HTTPStatus.OK, "")
        elif kind == "Notification":
            try:
                self.server.mailbox.deliver(envelope, address)
            except OSError:
                logger.exception("mailbox %s: could not write the e-mail", address)
                self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, "could not write the e-mail")
                return
            self._answer(HTTPStatus.OK, "")
        else:
            self._answer(HTTPStatus.BAD_REQUEST, f"unknown SNS message type {kind!r}")

    def _answer(self, status: HTTPStatus, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("mailbox: " + format, *args)


def _alarm_message(raw: str) -> dict[str, Any] | None:
    """The message as CloudWatch alarm JSON, or None when it is something else."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    is_alarm = isinstance(message, dict) and {"AlarmName", "NewStateValue"} <= message.keys()
    return message if is_alarm and isinstance(message.get("Trigger"), dict) else None


def _alarm_text(alarm: Mapping[str, Any]) -> str:
    """The body CloudWatch alarm notifications have in SNS e-mails."""
    name = str(alarm["AlarmName"])
    arn = str(alarm.get("AlarmArn") or "")
    region = arn.split(":")[3] if arn.count(":") >= 5 else ""
    trigger: Mapping[str, Any] = alarm["Trigger"]
    reason = alarm.get("NewStateReason") or ""
    when = _long_time(str(alarm.get("StateChangeTime") or ""))
    periods = trigger.get("EvaluationPeriods", 1)
    threshold = trigger.get("Threshold")
    dimensions = " ".join(f"[{d.get('name')} = {d.get('value')}]" for d in trigger.get("Dimensions") or ())
    lines = [
        f'You are receiving this email because your Amazon CloudWatch Alarm "{name}" in the '
        f"{alarm.get('Region')} region has entered the {alarm['NewStateValue']} state, "
        f'because "{reason}" at "{when}".',
        "",
        "View this alarm in the AWS Management Console:",
        f"https://{region}.console.aws.amazon.com/cloudwatch/deeplink.js?region={region}"
        f"#alarmsV2:alarm/{quote(name, safe='')}",
        "",
        "Alarm Details:",
        _field("Name", name),
        _field("Description", alarm.get("AlarmDescription") or ""),
        _field("State Change", f"{alarm.get('OldStateValue')} -> {alarm['NewStateValue']}"),
        _field("Reason for State Change", reason),
        _field("Timestamp", when),
        _field("AWS Account", alarm.get("AWSAccountId") or ""),
        _field("Alarm Arn", arn),
        "",
        "Threshold:",
        f"- The alarm is in the ALARM state when the metric is {trigger.get('ComparisonOperator')} "
        f"{format_double(float(threshold)) if threshold is not None else ''} for at least "
        f"{trigger.get('DatapointsToAlarm', periods)} of the last {periods} period(s) of "
        f"{trigger.get('Period')} seconds.",
        "",
        "Monitored Metric:",
        _field("MetricNamespace", trigger.get("Namespace"), width=39),
        _field("MetricName", trigger.get("MetricName"), width=39),
        _field("Dimensions", dimensions, width=39),
        _field("Period", f"{trigger.get('Period')} seconds", width=39),
        _field("Statistic", _STATISTICS.get(str(trigger.get("Statistic")), trigger.get("Statistic")), width=39),
        _field("Unit", trigger.get("Unit") or "not specified", width=39),
        _field("TreatMissingData", trigger.get("TreatMissingData") or "missing", width=39),
        "",
        "",
        "State Change Actions:",
        *(
            f"- {state}:" + "".join(f" [{action}]" for action in alarm.get(key) or ())
            for state, key in (
                ("OK", "OKActions"),
                ("ALARM", "AlarmActions"),
                ("INSUFFICIENT_DATA", "InsufficientDataActions"),
            )
        ),
    ]
    return "\n".join(lines) + "\n"


def _field(label: str, value: object, width: int = 30) -> str:
    return f"{f'- {label}:':<{width}}{value}".rstrip()


def _long_time(stamp: str) -> str:
    """``2026-11-27T00:05:00.123+0000`` as the e-mails write it: ``Friday 27 November, 2026 00:05:00 UTC``."""
    try:
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)
    except ValueError:
        return stamp
    return f"{_DAYS[moment.weekday()]} {moment:%d} {_MONTHS[moment.month - 1]}, {moment:%Y %H:%M:%S} UTC"


def _unsubscribe_url(envelope: Mapping[str, Any], address: str) -> str:
    """SNS's e-mail unsubscribe link for ``address``, naming the subscription the envelope names."""
    topic = str(envelope.get("TopicArn") or "")
    region = topic.split(":")[3] if topic.count(":") >= 5 else "us-east-1"
    query = parse_qs(urlsplit(str(envelope.get("UnsubscribeURL") or "")).query)
    subscription = query.get("SubscriptionArn", [topic])[0]
    return (
        f"https://sns.{region}.amazonaws.com/unsubscribe.html"
        f"?SubscriptionArn={subscription}&Endpoint={quote(address, safe='@')}"
    )


def _slug(subject: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60].rstrip("-") or "notification"
