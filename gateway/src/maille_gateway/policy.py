"""Who may call what: public paths, and the roles or scopes a path prefix asks for."""

from __future__ import annotations

import re

from maille_gateway.settings import RoutePolicy
from maille_kit.auth import Principal


def _pattern(glob: str) -> re.Pattern[str]:
    # `*` stands for one path segment or more; everything else is literal.
    return re.compile("^" + "[^/]+(?:/[^/]+)*".join(re.escape(part) for part in glob.split("*")) + "$")


class Policies:
    """The gateway's access rules, from its settings."""

    def __init__(self, public_paths: list[str], policies: dict[str, RoutePolicy]) -> None:
        self._public = [_pattern(glob) for glob in public_paths]
        # Longest prefix first: the most specific rule wins.
        self._prefixes = sorted(policies.items(), key=lambda item: len(item[0]), reverse=True)

    def is_public(self, path: str) -> bool:
        return any(pattern.match(path) for pattern in self._public)

    def rule(self, path: str) -> tuple[str, RoutePolicy] | None:
        for prefix, rule in self._prefixes:
            if path.startswith(prefix):
                return prefix, rule
        return None

    def allows(self, path: str, principal: Principal) -> str | None:
        """None when `principal` may call `path`; otherwise what it lacks, said plainly."""
        found = self.rule(path)
        if found is None:
            return None
        prefix, rule = found
        if not rule.roles and not rule.scopes:
            return None
        if principal.roles.intersection(rule.roles) or principal.scopes.intersection(rule.scopes):
            return None
        wanted = [f"role {r}" for r in rule.roles] + [f"scope {s}" for s in rule.scopes]
        return f"{prefix} needs the {' or the '.join(wanted)}"
