"""scripts/uv_env.py: uv gets the package sources pip is configured with (setup.sh installs through uv)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "uv_env.py"


def _module():
    spec = importlib.util.spec_from_file_location("uv_env", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pip_settings_become_uv_variables_and_the_environment_wins():
    uv_env = _module()
    listing = "\n".join([
        "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
        "global.find-links='/opt/wheels /srv/more'",
        "global.constraint='/etc/pip/constraints.txt'",
        "global.cert='/etc/ssl/company.pem'",
        "global.timeout='60'",                       # nothing for uv: left out
        ":env:.find-links='/override'",              # PIP_FIND_LINKS, listed after the files, wins
    ])
    exports = uv_env.uv_exports(uv_env.pip_settings(listing))
    assert exports[0] == "export UV_INDEX_STRATEGY=unsafe-best-match"   # pip's best match across indexes
    assert "export UV_EXTRA_INDEX_URL='file:///opt/a/simple file:///opt/b/simple'" in exports
    assert "export UV_FIND_LINKS=/override" in exports and not any("/opt/wheels" in e for e in exports)
    assert "export UV_CONSTRAINT=/etc/pip/constraints.txt" in exports
    assert "export SSL_CERT_FILE=/etc/ssl/company.pem" in exports
    assert not any("60" in e for e in exports)
    several = uv_env.uv_exports(uv_env.pip_settings("global.find-links='/a /b'"))
    assert "export UV_FIND_LINKS=/a,/b" in several    # uv separates find-links with commas


def test_the_script_reads_this_pips_configuration():
    env = {**os.environ, "PIP_FIND_LINKS": "/tmp/vdata-test-wheels", "PIP_CONFIG_FILE": os.devnull}
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, check=True).stdout
    assert "export UV_FIND_LINKS=/tmp/vdata-test-wheels" in out.splitlines()
