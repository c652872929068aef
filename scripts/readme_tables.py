"""Write the README's generated tables (settings, report fields) from ``--about``.

``python scripts/readme_tables.py``; tests/test_readme.py fails when they are stale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "settings-table": "## Settings",
    "report-fields": "## Report fields",
}


def about_markdown() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tap_appsflyer_cohort", "--about", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def table(about: str, title: str) -> str:
    section = about.split(title, 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def main() -> None:
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text(encoding="utf-8")
    about = about_markdown()
    for marker, title in TABLES.items():
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        head, rest = readme.split(start, 1)
        _, tail = rest.split(end, 1)
        readme = f"{head}{start}\n{table(about, title)}\n{end}{tail}"
    readme_path.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
