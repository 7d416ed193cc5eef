"""System tests import the services' test factories too."""

import sys
from pathlib import Path

for service in ("outreach", "rehab", "referral"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / service / "tests"))
