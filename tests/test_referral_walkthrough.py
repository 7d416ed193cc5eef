"""The referral part of the walkthrough (services/referral/WALKTHROUGH.md), run after the
README's walkthrough in the same shell against `pulih up`: a clinic is added, the screened
client is referred, the reference clinic closes the loop with a back referral."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_readme_walkthrough import ROOT, Regency, walkthrough_block

pytestmark = pytest.mark.system


def referral_block() -> str:
    text = (ROOT / "services" / "referral" / "WALKTHROUGH.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None, "WALKTHROUGH.md has no bash block"
    return block.group(1)


def test_pulih_up_starts_referral_and_the_walkthrough_closes_the_loop(tmp_path: Path) -> None:
    regency = Regency(tmp_path / "regency")
    regency.up()
    try:
        assert f"referral   {regency.referral}" in regency.log.read_text()
        script = walkthrough_block().replace("source .venv/bin/activate\n", "") + referral_block()
        env = {
            **regency.env,
            "OUTREACH": regency.outreach,
            "REFERRAL": regency.referral,
            "NATS_URL": f"nats://127.0.0.1:{regency.nats_port}",
        }
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        out = run.stdout
        assert "answered 1 referral(s)" in out
        assert '"status":"completed"' in out and '"back_referral":true' in out
        types = [
            line.split()[1] for line in out.splitlines() if re.search(r"pulih\.(referral|clinic)\.", line)
        ]
        assert types[-5:] == [
            "pulih.referral.ReferredToClinic.v1",
            "pulih.referral.ReferralClosed.v1",
            "pulih.clinic.ReferralAccepted.v1",
            "pulih.clinic.ClientAttended.v1",
            "pulih.clinic.TreatmentCompleted.v1",
        ]
        assert "Budi" not in "\n".join(line for line in out.splitlines() if "pulih.referral." in line)
    finally:
        assert regency.interrupt() == 0
