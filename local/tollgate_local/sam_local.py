"""``sam local invoke`` against ``make local``: the ``--env-vars`` files it needs.

``sam local invoke <Function> -e events/<event>.json --env-vars <file>`` runs a handler in
Lambda's container image. Pointed at ``make local``, the function needs the variables the
local stack gave it (its table names, stack name ...) and the local endpoints. The file is in
SAM's format, ``{"<FunctionLogicalId>": {"VAR": "value"}}``, one entry per function, with
each function's variables as moto's Lambda holds them plus ``AWS_ENDPOINT_URL`` (moto) and
``AWS_ENDPOINT_URL_BEDROCK[_RUNTIME]`` (the Bedrock stand-in).

SAM passes a variable from the file only if the template declares it for the function:
template.yaml's Globals declare the endpoint variables (as AWS::NoValue, so never set in AWS).

The container cannot reach the host's 127.0.0.1, where the emulator listens (and only there:
it is not to be reached from the network). Two files, for the two ways Docker runs:

* ``sam-env.json`` (endpoints on 127.0.0.1), with ``--docker-network host``: on Linux the
  container then shares the host's network, loopback included;
* ``sam-env-docker-desktop.json`` (endpoints on host.docker.internal): Docker Desktop (macOS,
  Windows) forwards that name to the host's loopback. On Linux, host.docker.internal (with
  ``--add-host host.docker.internal:host-gateway``) is the bridge's address, where nothing
  listens: use the first file there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: The variables that point boto3 at the local emulator (template.yaml's Globals declare them).
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
HOST_NETWORK_FILE = "sam-env.json"
DOCKER_DESKTOP_FILE = "sam-env-docker-desktop.json"
DOCKER_DESKTOP_HOST = "host.docker.internal"


def endpoints(aws_url: str, bedrock_url: str) -> dict[str, str]:
    return dict(zip(ENDPOINT_VARIABLES, (aws_url, bedrock_url, bedrock_url), strict=True))


def env_vars(functions: Mapping[str, Mapping[str, str]], endpoint_urls: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """SAM's --env-vars content: each function's own variables and the endpoints."""
    return {logical: {**variables, **endpoint_urls} for logical, variables in sorted(functions.items())}


def on_host(url: str, host: str) -> str:
    """``url`` with its host replaced (the port kept)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{host}{port}"))


def write_env_files(
    state_dir: Path, functions: Mapping[str, Mapping[str, str]], *, aws_url: str, bedrock_url: str
) -> dict[str, Path]:
    """Both files (see the module docstring), by the Docker networking each is for."""
    written = {}
    for name, file, host in (
        ("host network", HOST_NETWORK_FILE, None),
        ("Docker Desktop", DOCKER_DESKTOP_FILE, DOCKER_DESKTOP_HOST),
    ):
        urls = endpoints(*(on_host(u, host) if host else u for u in (aws_url, bedrock_url)))
        path = state_dir / file
        path.write_text(json.dumps(env_vars(functions, urls), indent=2) + "\n")
        written[name] = path
    return written
