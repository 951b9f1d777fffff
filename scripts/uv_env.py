"""Print `export` lines that give uv the package sources pip is configured with on this machine.

scripts/setup.sh installs with uv (`uv pip install`), which reads neither pip.conf nor PIP_* variables. A
machine whose pip is pointed at mirrors, local wheel folders, constraints or a company certificate must get
the same packages from uv, so each of pip's settings (from `pip config list`: files and PIP_* environment,
the later overriding the earlier, as pip applies them) becomes uv's variable for it. pip looks for the best
version across all its indexes; uv, by default, stops at the first index that has the package, so the index
strategy is set to pip's. Run with the venv's python: `eval "$(.venv/bin/python scripts/uv_env.py)"`.
"""
from __future__ import annotations

import shlex
import subprocess
import sys

# pip's option -> uv's variable. pip separates several values with spaces; so does uv, but for find-links.
UV_VARIABLES = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
    "cert": "SSL_CERT_FILE",
    "trusted-host": "UV_INSECURE_HOST",
    "no-index": "UV_NO_INDEX",
}


def pip_settings(listing: str) -> dict[str, str]:
    """{option: value} from `pip config list` lines such as `global.find-links='/opt/wheels'`."""
    settings: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        option = key.rsplit(".", 1)[-1]
        try:
            parts = shlex.split(value)
        except ValueError:
            continue
        settings[option] = " ".join(parts)
    return settings


def uv_exports(settings: dict[str, str]) -> list[str]:
    lines = ["export UV_INDEX_STRATEGY=unsafe-best-match"]
    for option, value in settings.items():
        variable = UV_VARIABLES.get(option)
        if variable and value:
            if variable == "UV_FIND_LINKS":
                value = ",".join(value.split())
            lines.append(f"export {variable}={shlex.quote(value)}")
    return lines


def main() -> None:
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             check=False).stdout
    print("\n".join(uv_exports(pip_settings(listing))))


if __name__ == "__main__":
    main()
