"""What a release ships: the license, the project URLs, and sdist and wheel contents.

The build test runs ``uv build`` (hatchling, as pyproject.toml says) and looks inside the
archives; it is skipped where uv is not installed (it fails instead under CI=true).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from importlib.metadata import PackageMetadata, metadata
from pathlib import Path

import pytest
import yaml

from tests.e2e_support import ROOT

#: The installed (editable) distribution's metadata, as pyproject.toml declares it.
INSTALLED = metadata("tap-appsflyer-cohort")
HUB_FILE = ROOT / "meltano-hub/extractors/tap-appsflyer-cohort/appsflyer-cohort.yml"
HUB = yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))
#: SHA-256 of the Apache License 2.0 as apache.org publishes it (LICENSE-2.0.txt, 11,358
#: bytes; the same bytes as Debian's /usr/share/common-licenses/Apache-2.0).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
NOT_SHIPPED = ("tests/", ".ci/", ".github/", "scripts/")
#: A file of each package the wheel ships.
PACKAGE_FILES = (
    "tap_appsflyer_cohort/tap.py",
    "tap_appsflyer_cohort/py.typed",
    "tap_appsflyer_cohort/sandbox/server.py",
    "tap_appsflyer_cohort/sandbox/cli.py",
    "target_appsflyer_audiences/__init__.py",
)


def project_urls(headers: Message | PackageMetadata) -> dict[str, str]:
    """``Project-URL: Label, url`` headers as {label: url}."""
    pairs = (value.split(", ", 1) for value in headers.get_all("Project-URL") or [])
    return {label: url for label, url in pairs}


def test_license_is_the_complete_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256
    assert INSTALLED["License-Expression"] == "Apache-2.0"
    assert INSTALLED.get_all("License-File") == ["LICENSE"]


def test_project_urls_point_at_the_one_repository() -> None:
    repository = HUB["repo"]
    assert repository == f"https://github.com/{HUB['variant']}/tap-appsflyer-cohort"
    urls = project_urls(INSTALLED)
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
    assert urls["Repository"] == urls["Homepage"] == repository
    assert all(url.startswith(repository) for url in urls.values())
    assert HUB["docs"].startswith(repository)


def test_the_package_declares_its_types() -> None:
    assert (ROOT / "tap_appsflyer_cohort" / "py.typed").is_file()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # `.ci/run` keeps uv in .venv-tools (never on the machine's PATH).
    tools_uv = ROOT / ".venv-tools" / "bin" / "uv"
    uv = str(tools_uv) if tools_uv.is_file() else shutil.which("uv")
    if uv is None:
        if os.environ.get("CI") == "true":
            pytest.fail("uv is not installed (bash .ci/run puts it in .venv-tools)")
        pytest.skip("uv is not installed (bash .ci/run puts it in .venv-tools)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--quiet", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_sdist_ships_the_package_not_the_tests_or_tooling(built: tuple[Path, Path]) -> None:
    sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    for wanted in ("LICENSE", "README.md", "pyproject.toml", *PACKAGE_FILES):
        assert wanted in names


def test_wheel_ships_package_sandbox_types_license_and_urls(built: tuple[Path, Path]) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = Parser().parsestr(archive.read(metadata).decode())
        (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        license_text = archive.read(license_file)
    for wanted in PACKAGE_FILES:
        assert wanted in names
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    assert hashlib.sha256(license_text).hexdigest() == APACHE_2_SHA256
    assert headers["License-Expression"] == "Apache-2.0"
    assert project_urls(headers) == project_urls(INSTALLED)
