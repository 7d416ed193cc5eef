"""System tests import the outreach and referral test factories too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "outreach" / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "referral" / "tests"))
