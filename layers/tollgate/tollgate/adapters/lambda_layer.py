"""Read config.json and models.json out of a specific version of the config layer.

The provisioner is told which ConfigLayer version to apply (a custom resource property), and
reads exactly that version, not whatever happens to be mounted in /opt. During a rollback
CloudFormation sends the previous version's ARN, so the previous configuration is restored.
"""

from __future__ import annotations

import io
import urllib.request
import zipfile
from collections.abc import Callable
from typing import Any

from tollgate.config import CONFIG_FILE, LAYER_CONFIG_DIR, MODELS_FILE, ConfigBundle, ConfigError, ConfigProblem


def bundle_from_layer(
    lambda_client: Any, layer_version_arn: str, opener: Callable[..., Any] = urllib.request.urlopen
) -> ConfigBundle:
    content = lambda_client.get_layer_version_by_arn(Arn=layer_version_arn)["Content"]
    with opener(content["Location"], timeout=30) as response:  # a pre-signed S3 URL, valid 10 minutes
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    texts = {}
    for name in (CONFIG_FILE, MODELS_FILE):
        try:
            texts[name] = archive.read(f"{LAYER_CONFIG_DIR}/{name}").decode("utf-8")
        except KeyError:
            raise ConfigError(
                [
                    ConfigProblem(
                        name, "", f"not found in layer {layer_version_arn} (expected {LAYER_CONFIG_DIR}/{name})"
                    )
                ]
            ) from None
    return ConfigBundle.from_texts(texts[CONFIG_FILE], texts[MODELS_FILE])
