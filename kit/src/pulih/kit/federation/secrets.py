"""The federation's passwords: generated once, kept in one JSON file readable by its owner only.

Every password the rendered configs carry (each regency's services, clinics and leaf link, the
national reporting, the hub's administrator, the hub cluster's routes) comes from here. A missing
one is generated on first use and saved at once; nothing here prints or logs a password.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from pathlib import Path

from pulih.kit.federation.names import check_clinic, check_code

_MODE = 0o600


class Secrets:
    """The passwords in ``path``; ask for one by what it is for."""

    def __init__(self, path: Path, values: dict[str, str]) -> None:
        self.path = path
        self._values = values

    @classmethod
    def load_or_create(cls, path: Path) -> Secrets:
        """The secrets file at ``path``, or a new empty one (mode 0600)."""
        path = Path(path)
        if path.exists():
            values = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ValueError(f"{path}: not a secrets file (a JSON object of strings)")
            return cls(path, values)
        made = cls(path, {})
        made._save()
        return made

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self._values, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(partial, _MODE)
        os.replace(partial, self.path)

    def _get(self, key: str) -> str:
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = _random.token_urlsafe(24)
            self._save()
        return value

    def service(self, code: str) -> str:
        """The password of user ``pulih`` (Pulih's services) on regency ``code``'s server."""
        return self._get(f"regency.{check_code(code)}.service")

    def clinic(self, code: str, clinic_id: str) -> str:
        """The password of a clinic's user on regency ``code``'s server."""
        return self._get(f"regency.{check_code(code)}.clinic.{check_clinic(clinic_id)}")

    def link(self, code: str) -> str:
        """The password regency ``code``'s leaf link logs in to the hub with (user ``r<code>``)."""
        return self._get(f"regency.{check_code(code)}.link")

    def national(self) -> str:
        """The password of the national reporting's user ``national`` on the hub."""
        return self._get("hub.national")

    def hub_admin(self) -> str:
        """The password of the hub's administrator ``hub``."""
        return self._get("hub.admin")

    def cluster(self) -> str:
        """The password the hub's nodes authenticate their cluster routes with."""
        return self._get("hub.cluster")
