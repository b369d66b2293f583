"""`sam build` (cached, as samconfig.toml sets it) always builds the config layer from the current files.

A user edits models.json (a new price) or config.json (a new profile) and builds again. SAM's
build cache is keyed by a hash of the layer's ContentUri folder: the built layer must equal the
files at the top level of the repository after every build, or every tenant is charged old
prices while `tollgate config check` passes.

Runs the real `sam build` on the template's own ConfigLayer definition (the other resources are
left out: they need pip and take a minute), in a copy of the repository's files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tollgate.config import CONFIG_FILE, LAYER_CONFIG_DIR, MODELS_FILE
from tollgate_local.template import load_template

from tests.conftest import REPO_ROOT

SAM = Path(sys.executable).with_name("sam")
PYENV_313 = os.environ.get("PYENV_313", "3.13.0")


def _config_layer_only(tmp: Path) -> None:
    sam = load_template(REPO_ROOT / "template.yaml")
    layer = sam["Resources"]["ConfigLayer"]
    reduced = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {"ConfigLayer": layer},
    }
    (tmp / "template.yaml").write_text(json.dumps(reduced, indent=2))  # JSON is YAML


def _copy_project(tmp: Path) -> None:
    for name in (CONFIG_FILE, MODELS_FILE, "samconfig.toml"):
        shutil.copy2(REPO_ROOT / name, tmp / name)
    content_uri = load_template(REPO_ROOT / "template.yaml")["Resources"]["ConfigLayer"]["Properties"]["ContentUri"]
    # symlinks=True: the copy is what a clone of the repository holds (git keeps symlinks as links)
    shutil.copytree(REPO_ROOT / content_uri, tmp / content_uri, symlinks=True)
    _config_layer_only(tmp)


def _sam_build(cwd: Path, *, succeed: bool = True) -> str:
    env = {
        **os.environ,
        "PATH": f"{SAM.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYENV_VERSION": PYENV_313,
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_CONTEXTS": "0",
    }
    done = subprocess.run(
        [str(SAM), "build"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert (done.returncode == 0) is succeed, done.stdout + done.stderr
    return done.stdout + done.stderr


def _built(tmp: Path, name: str) -> str:
    return (tmp / ".aws-sam" / "build" / "ConfigLayer" / LAYER_CONFIG_DIR / name).read_text()


def test_a_cached_build_after_an_edit_holds_the_new_files(tmp_path: Path) -> None:
    # Given a project built once with samconfig.toml's cached = true
    _copy_project(tmp_path)
    assert "cached = true" in (tmp_path / "samconfig.toml").read_text()
    _sam_build(tmp_path)
    assert _built(tmp_path, MODELS_FILE) == (tmp_path / MODELS_FILE).read_text()

    # When a price changes in models.json and a profile is added to config.json, and it is built again
    models = json.loads((tmp_path / MODELS_FILE).read_text())
    first_model = next(iter(models["models"].values()))
    first_model["prices"][0]["output"] = "123.456"
    (tmp_path / MODELS_FILE).write_text(json.dumps(models, indent=2))
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["profiles"]["acme-new"] = dict(next(iter(config["profiles"].values())))
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    _sam_build(tmp_path)

    # Then the built layer holds exactly the edited files
    assert _built(tmp_path, MODELS_FILE) == (tmp_path / MODELS_FILE).read_text()
    assert _built(tmp_path, CONFIG_FILE) == (tmp_path / CONFIG_FILE).read_text()

    # And a build with nothing changed still uses the cache (the fix does not just turn caching off)
    log = _sam_build(tmp_path)
    cache_lines = [line for line in log.splitlines() if line.startswith("Valid cache found")]
    assert any("ConfigLayer" in line for line in cache_lines), log


def test_a_checkout_without_symlinks_fails_the_build_with_the_fix(tmp_path: Path) -> None:
    # Given a checkout where git wrote the layer's links as plain text files (core.symlinks=false)
    _copy_project(tmp_path)
    content_uri = load_template(REPO_ROOT / "template.yaml")["Resources"]["ConfigLayer"]["Properties"]["ContentUri"]
    link = tmp_path / content_uri / MODELS_FILE
    link.unlink()
    link.write_text(f"../../{MODELS_FILE}")

    # When it is built, then the build stops and says how to repair the checkout
    log = _sam_build(tmp_path, succeed=False)
    assert f"{content_uri}/{MODELS_FILE} must be a symbolic link" in log
