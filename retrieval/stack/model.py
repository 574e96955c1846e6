"""What a stack holds: entries (vendor, product, version, CPE, purl), per scope."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_SCOPE", "Component", "StackEntry", "scope_for"]

#: The scope of the console and of the command line when no ``--scope`` is given.
DEFAULT_SCOPE = "default"


def scope_for(platform: str, workspace: str, channel: str = "") -> str:
    """The stack scope of a chat workspace: ``slack:T0123``, ``discord:9876…``; ``default`` for the console.

    The platform is part of the name because a Slack team id and a Discord guild id live in different
    namespaces; the console has a single workspace, the default one that the CLI also manages. A chat
    message without a workspace (a Discord DM) gets its channel's own scope, never another's stack.
    """
    workspace = workspace.strip()
    if platform == "console":
        return DEFAULT_SCOPE
    if not workspace:
        return f"{platform}:channel:{channel}" if channel else f"{platform}:none"
    return f"{platform}:{workspace}"


@dataclass(frozen=True)
class Component:
    """One thing a team runs, as a file or a person stated it, before it is stored."""

    product: str
    vendor: str = ""
    version: str = ""
    cpe: str | None = None
    purl: str | None = None
    #: Package coordinates' namespace when there is no purl (a CycloneDX ``group``): hints at the vendor.
    namespace: str = ""
    #: Where it was stated ("line 3", "components[12]"), for error messages.
    where: str = ""


@dataclass(frozen=True)
class StackEntry:
    """A stored stack entry. ``vendor``/``product`` are the dictionary's names where it knows them."""

    id: int
    scope: str
    vendor: str
    product: str
    version: str = ""
    cpe: str | None = None
    purl: str | None = None
    origin: str = ""
    #: Other spellings that identify the product (an SBOM's artifact name, a CPE product).
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """How answers name it: "Fortinet FortiOS 7.2.5"."""
        name = self.product if not self.vendor or self.product.lower().startswith(self.vendor.lower()) else None
        base = name or f"{self.vendor} {self.product}".strip()
        return f"{base} {self.version}".strip() if self.version else base

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "vendor": self.vendor, "product": self.product}
        out["version"] = self.version or None
        if self.cpe:
            out["cpe"] = self.cpe
        if self.purl:
            out["purl"] = self.purl
        if self.origin:
            out["origin"] = self.origin
        return out
