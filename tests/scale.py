"""A large config.json, made in the test: many tenants and profiles, valid as a user would write it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tollgate.config import ConfigBundle

REPO_ROOT = Path(__file__).resolve().parents[1]


def large_config(profiles: int = 200, tenants: int = 60) -> dict[str, Any]:
    """The repository's config.json grown to ``profiles`` profiles over ``tenants`` tenants.

    Models and scopes cycle through those of the sample profiles; every profile has its own
    thresholds and tags, so each alarm and dashboard line is distinct.
    """
    sample = json.loads((REPO_ROOT / "config.json").read_text())
    kinds = [(p["model"], p.get("scope")) for p in sample["profiles"].values()]
    config: dict[str, Any] = {**sample, "tenants": {}, "profiles": {}}
    for t in range(tenants):
        tenant = f"tenant-{t:02d}"
        config["tenants"][tenant] = {"display_name": f"Tenant {t}", "tags": {"TenantID": tenant}}
    for p in range(profiles):
        tenant = f"tenant-{p % tenants:02d}"
        model, scope = kinds[p % len(kinds)]
        config["profiles"][f"{tenant}-app-{p:03d}"] = {
            "tenant": tenant,
            "model": model,
            **({"scope": scope} if scope else {}),
            "tags": {"Application": f"App{p}"},
            "thresholds": {"requests_per_min_threshold": 10 + p, "tokens_per_min_threshold": 1000 + p},
        }
    return config


def large_bundle(profiles: int = 200, tenants: int = 60) -> ConfigBundle:
    return ConfigBundle.from_texts(json.dumps(large_config(profiles, tenants)), (REPO_ROOT / "models.json").read_text())
