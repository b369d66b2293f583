"""`tollgate` as a user runs it: main() in-process, against moto server and the Bedrock stand-in.

The local stack is stood for by a ``.tollgate/local.json`` (as `make local` writes it) that
points at a moto server with the stack's tables and at a Bedrock stand-in; a deployed stack
by a CloudFormation stack in moto whose Outputs name its tables.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from tollgate_cli.main import main
from tollgate_local.bedrock import BedrockStandIn, Faults
from tollgate_local.moto_server import LocalMotoServer
from tollgate_local.template import REPO_ROOT, create_tables

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = LocalMotoServer()
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[BedrockStandIn, str]]:
    app = BedrockStandIn(region=REGION, account_id="123456789012")
    server = app.serve()
    yield app, server.url
    server.stop()


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        """stdout and stderr as one line of words (rich wraps long lines at the terminal's width)."""
        return " ".join((self.out + " " + self.err).split())


@dataclass
class Cli:
    tmp: Path
    capsys: pytest.CaptureFixture[str]
    tables: dict[str, str]

    def __call__(self, *argv: str) -> Run:
        self.capsys.readouterr()
        code = main(["--dir", str(REPO_ROOT), *argv])
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def local_json(self, **changes: Any) -> None:
        state = json.loads((self.tmp / ".tollgate" / "local.json").read_text())
        state.update(changes)
        (self.tmp / ".tollgate" / "local.json").write_text(json.dumps(state))


def dynamodb(url: str, region: str = REGION) -> Any:
    return boto3.client("dynamodb", region_name=region, endpoint_url=url)


@pytest.fixture
def cli(
    moto_url: str,
    standin: tuple[BedrockStandIn, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    """A local stack's local.json in the working directory: the stack's tables (names of their own, since
    moto's backends are this process's) on moto server, and the Bedrock stand-in."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)  # the CLI sets it for the local stack: restored after
    monkeypatch.chdir(tmp_path)
    run = uuid.uuid4().hex[:8]
    tables = {
        logical: f"{logical.lower()}-{run}" for logical in ("UsageTable", "TrendTable", "TenantTable", "ControlTable")
    }
    create_tables(dynamodb(moto_url), tables)
    (tmp_path / ".tollgate").mkdir()
    app, bedrock_url = standin
    state = {"api_url": "http://127.0.0.1:9", "aws_endpoint_url": moto_url, "region": REGION, "tenants": {},
             "resources": tables, "outbox": ".tollgate/outbox", "bedrock_endpoint_url": bedrock_url}  # fmt: skip
    (tmp_path / ".tollgate" / "local.json").write_text(json.dumps(state))
    app.reset()
    yield Cli(tmp_path, capsys, tables)
    app.reset()


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--throttle", "2"), "--throttle must be a number from 0 to 1, got 2.0"),
        (("--errors", "-0.1"), "--errors must be a number from 0 to 1, got -0.1"),
        (("--latency", "-5"), "--latency must be an integer from 0 to 60000, got -5"),
    ],
)
def test_a_fault_out_of_range_is_named_by_its_flag_and_nothing_is_sent(
    cli: Cli, standin: tuple[BedrockStandIn, str], argv: tuple[str, str], named: str
) -> None:
    run = cli("faults", *argv)
    assert run.code == 2
    assert named in run.said
    assert "credentials" not in run.said
    assert standin[0].faults() == Faults().as_dict()  # none changed


def test_faults_accepts_local_and_sets_the_stand_ins_faults(cli: Cli, standin: tuple[BedrockStandIn, str]) -> None:
    run = cli("faults", "--local", "--throttle", "0.3", "--latency", "20")
    assert run.code == 0
    assert json.loads(run.out) == {**Faults().as_dict(), "throttle_rate": 0.3, "latency_ms": 20}
    assert standin[0].faults()["throttle_rate"] == 0.3


def test_a_refusal_by_the_stand_in_is_shown_as_the_stand_in_said_it(cli: Cli) -> None:
    class Refusing(BaseHTTPRequestHandler):  # a stand-in with stricter rules than this CLI knows
        def do_POST(self) -> None:
            body = json.dumps({"message": "latency_ms above 5000 is not allowed here"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cli.local_json(bedrock_endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
        run = cli("faults", "--latency", "9000")
    finally:
        server.shutdown()
        server.server_close()
    assert run.code == 2
    assert "refused: latency_ms above 5000 is not allowed here" in run.said
    assert "credentials" not in run.said


def test_a_stand_in_that_is_gone_is_said_so_not_blamed_on_aws(cli: Cli) -> None:
    cli.local_json(bedrock_endpoint_url="http://127.0.0.1:9")  # the discard port: nothing listens
    run = cli("faults", "--throttle", "0.1")
    assert run.code == 2
    assert "does not answer" in run.said
    assert "is `make local` still running?" in run.said
    assert "credentials" not in run.said


# --------------------------------------------------------------------------- keys


def issue(cli: Cli, tenant: str = "acme") -> str:
    run = cli("keys", "issue", tenant, "--local")
    assert run.code == 0, run.said
    return run.out.strip()


def test_revoking_by_the_whole_key_acts_on_its_id_and_never_prints_the_secret(cli: Cli) -> None:
    secret = issue(cli)
    key_id = secret.split("_")[1]
    run = cli("keys", "revoke", secret, "--local")
    assert run.code == 0, run.said
    assert f"revoked key {key_id} of tenant acme" in run.said
    assert secret not in run.out + run.err
    listed = cli("keys", "list", "--tenant", "acme", "--local")
    assert key_id in listed.said
    assert "revoked" in listed.said


def test_a_whole_key_that_is_not_on_the_stack_is_refused_without_echoing_it(cli: Cli) -> None:
    secret = issue(cli)
    typo = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    run = cli("keys", "revoke", typo, "--local")
    assert run.code == 2
    assert "is not on the local stack" in run.said
    assert typo not in run.out + run.err
    assert "active" in cli("keys", "list", "--local").said  # the real key with that id is untouched


def test_something_neither_a_key_id_nor_a_key_is_refused_without_echoing_it(cli: Cli) -> None:
    run = cli("keys", "revoke", "tg_abc_partofasecret", "--local")
    assert run.code == 2
    assert "neither a key id" in run.said
    assert "partofasecret" not in run.out + run.err


def test_revoking_twice_says_it_was_already_revoked_and_when(cli: Cli, moto_url: str) -> None:
    key_id = issue(cli).split("_")[1]
    assert cli("keys", "revoke", key_id, "--local").code == 0
    (stored,) = dynamodb(moto_url).scan(TableName=cli.tables["TenantTable"])["Items"]
    again = cli("keys", "revoke", key_id, "--local")
    assert again.code == 1
    assert f"key {key_id} of tenant acme was already revoked, at {stored['revoked_at']['S'][:19]}" in again.said
    assert "nothing changed" in again.said
    (still,) = dynamodb(moto_url).scan(TableName=cli.tables["TenantTable"])["Items"]
    assert still["revoked_at"] == stored["revoked_at"]  # the first revocation's time, kept


def test_listing_keys_of_an_unknown_tenant_names_the_tenants(cli: Cli) -> None:
    run = cli("keys", "list", "--tenant", "nope", "--local")
    assert run.code == 2
    assert "tenant 'nope' is not in config.json (tenants: acme, globex, initech)" in run.said


def test_listing_keys_of_a_tenant_without_keys_says_so(cli: Cli) -> None:
    issue(cli, "acme")
    run = cli("keys", "list", "--tenant", "globex", "--local")
    assert run.code == 0
    assert "tenant globex has no keys on the local stack" in run.said
    assert "tollgate keys issue globex" in run.said


# --------------------------------------------------------------------------- where a deployed stack is


def deploy_stack(url: str, name: str, region: str, tenant_table: str) -> None:
    """A stack in moto whose Outputs name a tenant table, as the real stack's do."""
    create_tables(dynamodb(url, region), {"UsageTable": f"{tenant_table}-u", "TrendTable": f"{tenant_table}-t",
                                          "TenantTable": tenant_table,
                                          "ControlTable": f"{tenant_table}-c"})  # fmt: skip
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TenantTableName": {"Value": tenant_table}},
    }
    boto3.client("cloudformation", region_name=region, endpoint_url=url).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def test_a_deployed_stack_is_found_by_samconfig_tomls_name_and_region(
    cli: Cli, moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given `sam deploy --guided` deployed a stack to eu-west-3 and wrote samconfig.toml; the shell says us-east-1
    name = f"tollgate-{uuid.uuid4().hex[:6]}"
    deploy_stack(moto_url, name, "eu-west-3", f"{name}-tenants")
    project = tmp_path / "project"
    project.mkdir()
    for file in ("config.json", "models.json"):
        (project / file).write_text((REPO_ROOT / file).read_text())
    (project / "samconfig.toml").write_text(
        f'version = 0.1\n[default.global.parameters]\nstack_name = "{name}"\n'
        '[default.deploy.parameters]\nregion = "eu-west-3"\ncapabilities = "CAPABILITY_IAM"\n'
    )
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    # When keys are issued and listed with no --stack nor --region
    cli.capsys.readouterr()
    assert main(["--dir", str(project), "keys", "issue", "globex"]) == 0
    assert main(["--dir", str(project), "keys", "list"]) == 0
    said = " ".join(cli.capsys.readouterr().err.split())
    # Then they act on that stack, in that region
    assert f"on stack {name} (eu-west-3)" in said
    items = dynamodb(moto_url, "eu-west-3").scan(TableName=f"{name}-tenants")["Items"]
    assert [i["tenant_id"]["S"] for i in items] == ["globex"]


def test_a_stack_that_is_not_there_is_named_with_where_its_name_and_region_came_from(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    run = cli("keys", "list", "--stack", "nothere")
    assert run.code == 2
    assert "stack nothere (name from --stack) in ap-south-1 (region from AWS_DEFAULT_REGION)" in run.said


# --------------------------------------------------------------------------- make help


def test_make_help_lists_every_documented_target() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    documented = [m.group(1) for m in re.finditer(r"^([\w-]+):.*## ", makefile, re.M)]
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    assert "e2e" in documented
    assert [t for t in documented if f"make {t} " not in listed] == []
