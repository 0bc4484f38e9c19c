"""caldav-server-tester against Tocsin: the conformance report, kept.

The report (every feature the tester rates, with its level) is written to
tests/artifacts/caldav-server-tester.txt and a summary to
tests/artifacts/caldav-server-tester-summary.json; docs/compatibility.md
summarises them. The bar: at least as many features rated `full` as
Xandikos (90 of 109 on the same tester) and Cyrus (89), and none `broken`.
"""

import ast
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FULL_FEATURES_MIN = 90  # Xandikos' count on this tester version; Cyrus has 89.


def caldav_server_tester_path() -> str:
    return str(Path(sys.executable).parent / "caldav-server-tester")


def test_caldav_server_tester_rates_tocsin_at_least_as_well_as_its_peers(server):
    server.add_user("tester", "tester-pw", "tester@example.com")
    run = subprocess.run(
        [
            caldav_server_tester_path(),
            "--caldav-url", server.url + "/",
            "--caldav-username", "tester",
            "--caldav-password", "tester-pw",
            "--format", "hints",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    features = ast.literal_eval(run.stdout)
    levels = collections.Counter(info.get("support", "?") for info in features.values())
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "caldav-server-tester.txt").write_text(run.stdout)
    (ARTIFACTS / "caldav-server-tester-summary.json").write_text(
        json.dumps({"features": len(features), "levels": levels, "not_full": {
            name: info for name, info in sorted(features.items()) if info.get("support") != "full"
        }}, indent=2, sort_keys=True)
    )
    broken = sorted(name for name, info in features.items() if info.get("support") == "broken")
    assert broken == [], broken
    assert levels["full"] >= FULL_FEATURES_MIN, levels
