"""Write the Hub definition's settings and group validation from meltano.yml.

The Hub file mirrors the extractor in meltano.yml (tests/test_meltano_project.py checks
it); run this after changing a setting there: ``python scripts/sync_hub.py``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "meltano-hub/extractors/tap-appsflyer-cohort/appsflyer-cohort.yml"
FIELDS = ("name", "kind", "label", "description", "sensitive", "options")


def main() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (extractor,) = [
        p for p in project["plugins"]["extractors"] if p["name"] == "tap-appsflyer-cohort"
    ]
    text = HUB.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    hub = yaml.safe_load(text)
    hub["settings_group_validation"] = extractor["settings_group_validation"]
    hub["capabilities"] = extractor["capabilities"]
    hub["settings"] = [
        {k: s[k] for k in FIELDS if k in s and s[k] is not None} for s in extractor["settings"]
    ]
    body = yaml.safe_dump(hub, sort_keys=False, allow_unicode=True, width=100)
    HUB.write_text(header + body, encoding="utf-8")


if __name__ == "__main__":
    main()
