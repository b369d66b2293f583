"""`tollgate prices` and `tollgate prices propose` as a user runs them: main() in-process.

The book is the TEST BOOK tests/fixtures/price_book (not a price source). The Price List answers
are FIXTURES in AWS's documented GetProducts shape, NOT AWS data (tests/fixtures/price_list), served
from files or by a stand-in for the Price List API on loopback: nothing reaches AWS.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tollgate_cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BOOK = FIXTURES / "price_book"
PRICE_LIST = FIXTURES / "price_list"
AMAZON = PRICE_LIST / "amazon-bedrock-us-east-1.json"
MARKETPLACE = PRICE_LIST / "foundation-models-us-east-1.json"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def said(self) -> str:
        return " ".join((self.out + " " + self.err).split())


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    def call(*argv: str, book: Path = BOOK) -> Run:
        capsys.readouterr()
        code = main(["--dir", str(book), *argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return call


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the test book's folder, to add a samconfig.toml or paste rows into."""
    for name in ("config.json", "models.json"):
        shutil.copy(BOOK / name, tmp_path / name)
    return tmp_path


# --------------------------------------------------------------------------- the book


def test_the_book_as_json_names_its_region_and_where_that_came_from(run: Any) -> None:
    result = run("prices", "--region", "us-east-1", "--on", "2026-12-03", "--format", "json")
    assert result.code == 0, result.said
    document = json.loads(result.out)
    assert (document["region"], document["region_from"], document["on"]) == ("us-east-1", "--region", "2026-12-03")
    lite = next(p for p in document["prices"] if p["model"] == "amazon.nova-lite-v1:0" and p["scope"] == "in-region")
    assert {k: lite[k] for k in ("input", "output", "cache_read", "cache_write", "cache_write_1h")} == {
        "input": "0.06", "output": "0.24", "cache_read": "0.015", "cache_write": "0.06", "cache_write_1h": None,
    }  # fmt: skip
    assert (lite["source"], lite["checked"], lite["discount"]) == ("test row A", "2026-11-30", None)
    haiku = next(p for p in document["prices"] if p["model"].startswith("anthropic.claude-haiku-4-5"))
    assert haiku["discount"] == {"label": "Anthropic-5%@2026-01-01", "percent": "5"}
    assert document["not_priced_here"] == ["anthropic.claude-3-haiku-20240307-v1:0"]


def test_the_region_comes_from_samconfig_before_the_environment(run: Any, project: Path) -> None:
    (project / "samconfig.toml").write_text('version = 0.1\n[default.deploy.parameters]\nregion = "eu-west-3"\n')
    result = run("prices", "--model", "amazon.nova-pro-v1:0", "--format", "json", book=project)
    document = json.loads(result.out)
    assert (document["region"], document["region_from"]) == ("eu-west-3", "samconfig.toml")
    assert [p["input"] for p in document["prices"]] == ["0.92"]  # eu-west-3's own row
    without = run("prices", "--model", "amazon.nova-pro-v1:0", "--format", "json")  # AWS_REGION=us-east-1 (tests)
    assert json.loads(without.out)["region_from"] == "AWS_REGION"


def test_the_local_stacks_region_with_local(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = run("prices", "--local")
    assert missing.code == 2
    assert "start the local stack first with `make local`" in missing.said
    (tmp_path / ".tollgate").mkdir()
    state = {"api_url": "http://127.0.0.1:9", "aws_endpoint_url": "http://127.0.0.1:9", "region": "eu-west-3",
             "tenants": {}, "resources": {}}  # fmt: skip
    (tmp_path / ".tollgate" / "local.json").write_text(json.dumps(state))
    document = json.loads(run("prices", "--local", "--model", "amazon.nova-pro-v1:0", "--format", "json").out)
    assert (document["region"], document["region_from"]) == ("eu-west-3", "the local stack")


def test_the_table_shows_every_figure_whole_with_its_source_and_what_changes_later(run: Any) -> None:
    result = run("prices", "--region", "us-east-1", "--on", "2026-12-03")
    assert result.code == 0
    assert "…" not in result.out
    rows = {tuple(line.split()[:2]): line.split() for line in result.out.splitlines() if line.startswith("  amazon.")}
    assert rows[("amazon.nova-micro-v1:0", "in-region")][2:9] == [
        "default/standard/standard", "0.035", "0.14", "0.00875", "0.035", "—", "2024-12-03",
    ]  # fmt: skip
    assert "[1] test row A" in result.said
    assert (
        "from 2027-01-01: amazon.nova-pro-v1:0 in-region default/standard/standard changes to input 0.70" in result.said
    )
    assert "not priced in us-east-1: anthropic.claude-3-haiku-20240307-v1:0" in result.said


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("--model", "nope.model-v1"), "model 'nope.model-v1' is not in models.json (models: amazon.nova-lite-v1:0"),
        (("--on", "03/12/2026"), "--on '03/12/2026' is not a date; write YYYY-MM-DD"),
    ],
)
def test_a_mistake_in_the_call_is_named(run: Any, argv: tuple[str, ...], said: str) -> None:
    result = run("prices", "--region", "us-east-1", *argv)
    assert result.code == 2
    assert said in result.said


# --------------------------------------------------------------------------- propose


def test_propose_on_saved_responses_prints_rows_that_paste_into_a_valid_models_json(run: Any, project: Path) -> None:
    result = run("prices", "propose", "--region", "us-east-1", "--on", "2026-12-03",
                 "--fixture", str(AMAZON), "--fixture", str(MARKETPLACE), book=project)  # fmt: skip
    assert result.code == 0, result.said
    proposal = json.loads(result.out)  # stdout is the JSON alone
    assert sorted(proposal["models"]) == ["amazon.nova-lite-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"]
    # on stderr: what changed, what could not be used
    assert "amazon.nova-lite-v1:0 in-region default/standard/standard input 0.06 0.07" in result.said
    assert "'Titan Text Express' is not in tollgate_cli.price_list.MODEL_NAMES" in result.said
    assert "refused: unit 'Units'" in result.said
    assert "not an on-demand token price" in result.said
    # When the rows are pasted at the end of their models' prices
    models = json.loads((project / "models.json").read_text())
    before = {m: list(e["prices"]) for m, e in models["models"].items()}
    for model, block in proposal["models"].items():
        models["models"][model]["prices"].extend(block["prices"])
    (project / "models.json").write_text(json.dumps(models, indent=2))
    # Then the book is valid, the old rows are there untouched, and there is nothing left to propose
    assert run("config", "check", book=project).code == 0
    for model, rows in before.items():
        assert models["models"][model]["prices"][: len(rows)] == rows
    again = run("prices", "propose", "--region", "us-east-1", "--on", "2026-12-03",
                "--fixture", str(AMAZON), "--fixture", str(MARKETPLACE), book=project)  # fmt: skip
    assert again.code == 0
    assert again.out == ""
    assert "no price differs from models.json" in again.said


def test_a_saved_file_that_is_not_a_response_is_refused(run: Any, tmp_path: Path) -> None:
    (tmp_path / "wrong.json").write_text('{"Products": []}')
    result = run("prices", "propose", "--region", "us-east-1", "--fixture", str(tmp_path / "wrong.json"))
    assert result.code == 2
    assert "wrong.json: not a GetProducts response" in result.said
    missing = run("prices", "propose", "--region", "us-east-1", "--fixture", str(tmp_path / "absent.json"))
    assert missing.code == 2
    assert "absent.json: file not found" in missing.said


def test_without_the_price_list_api_it_fails_clearly_and_says_how_to_use_a_saved_response(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", "http://127.0.0.1:9")  # the discard port: nothing listens
    result = run("prices", "propose", "--region", "us-east-1")
    assert result.code == 1
    assert "the AWS Price List API is not reachable: Could not connect to the endpoint URL" in result.said
    assert "tollgate prices propose --fixture bedrock.json --fixture marketplace.json" in result.said
    assert result.out == ""


class PriceListStandIn:
    """Answers pricing:GetProducts (JSON 1.1) on loopback with the FIXTURE responses, two entries a page."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        pages = {
            "AmazonBedrock": json.loads(AMAZON.read_text())["PriceList"],
            "AmazonBedrockFoundationModels": json.loads(MARKETPLACE.read_text())["PriceList"],
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"target": self.headers["X-Amz-Target"], **body})
                entries = pages[body["ServiceCode"]]
                start = int(body.get("NextToken", "0"))
                answer: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": entries[start : start + 2]}
                if start + 2 < len(entries):
                    answer["NextToken"] = str(start + 2)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_propose_reads_every_page_of_both_service_codes_for_the_region(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = PriceListStandIn()
    monkeypatch.setenv("AWS_ENDPOINT_URL_PRICING", stand_in.url)
    try:
        asked = run("prices", "propose", "--region", "us-east-1", "--on", "2026-12-03")
    finally:
        stand_in.close()
    saved = run("prices", "propose", "--region", "us-east-1", "--on", "2026-12-03",
                "--fixture", str(AMAZON), "--fixture", str(MARKETPLACE))  # fmt: skip
    assert asked.code == 0, asked.said
    # the same rows as from the saved responses (the sources name where they were read)
    assert json.loads(asked.out) == json.loads(saved.out)
    assert {r["target"] for r in stand_in.requests} == {"AWSPriceListService.GetProducts"}
    assert [r["ServiceCode"] for r in stand_in.requests] == ["AmazonBedrock"] * 5 + [
        "AmazonBedrockFoundationModels"
    ] * 4
    assert all(
        r["Filters"] == [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}] for r in stand_in.requests
    )


# --------------------------------------------------------------------------- what-if


def test_what_if_refuses_a_new_book_with_a_mistake_naming_its_file(run: Any, tmp_path: Path) -> None:
    models = json.loads((BOOK / "models.json").read_text())
    models["models"]["amazon.nova-lite-v1:0"]["prices"][0]["input"] = 0.25  # a JSON number, not a string
    (tmp_path / "new-models.json").write_text(json.dumps(models))
    result = run("prices", "what-if", str(tmp_path / "new-models.json"), "--local")
    assert result.code == 2
    assert "new-models.json: models.amazon.nova-lite-v1:0.prices[0].input" in result.said
    assert "is a JSON number" in result.said
