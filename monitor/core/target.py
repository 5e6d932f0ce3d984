"""What a probe is pointed at: one model tier of one network, with its credentials and limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from monitor.core.transport import DEFAULT_TRANSPORT, TransportSettings


@dataclass(frozen=True, slots=True)
class Target:
    """An endpoint plus model; `name` is the bounded `target` label (the tier, e.g. "small")."""

    network: str
    name: str
    kind: str
    base_url: str
    model: str
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    concurrency: int = 4
    check_output: bool = True
    transport: TransportSettings = DEFAULT_TRANSPORT  # TLS, proxy, IP family
    # The key itself is read from the environment at request time and never stored in a field
    # that is printed, logged or written anywhere.
    api_key_override: str | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.network}/{self.name}"

    def secrets(self) -> tuple[str | None, ...]:
        """What must never leave the process: the API key and the TLS key's password, for
        `monitor.core.secrets.scrub`."""
        return (self.api_key(), self.transport.key_password())

    def api_key(self) -> str | None:
        if self.api_key_override:
            return self.api_key_override
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None
