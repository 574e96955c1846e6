"""From what a person or a file calls a product to the vendor dictionary's names.

"FortiGate 7.2.5" becomes Fortinet FortiOS 7.2.5 (the dictionary knows FortiGate runs FortiOS);
"Siemens CPCI85 V5.30" becomes vendor Siemens (known) with the product as stated. A name the
dictionary does not know at all is refused with the closest names it does know — it is never
stored as something else. Files (SBOMs above all) name thousands of libraries no dictionary
knows; :func:`resolve_component` keeps those as stated, with the vendor their package
coordinates (Maven group, purl namespace) give.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache

from packageurl import PackageURL

from retrieval.stack.model import Component
from retrieval.vendors import VendorDictionary

__all__ = ["Resolved", "UnknownName", "cpe_parts", "resolve_component", "resolve_text", "split_version", "suggestions"]

#: A version at the end of a typed entry: "7.2.5", "V5.30", "10.2.9-h1", "V17 Update 5", "2019 CU14".
_TRAILING_VERSION = re.compile(
    r"^(?P<name>.+?)\s+(?:version\s+|ver\.?\s*)?(?P<version>v?\d[\w.\-+]*(?:\s+(?:update|sp|cu|build|patch|hotfix|r)\s*\d+)*)$",
    re.IGNORECASE,
)
#: Package-name tails that say which part of a product a library is, not which product ("log4j-core").
_ARTIFACT_TAIL = re.compile(
    r"[-_.](?:core|api|impl|common|commons|client|server|parent|all|embed|bom|starter|runtime|lib|java|spi|"
    r"jakarta|jdk\d*|osgi)$",
    re.IGNORECASE,
)
#: Namespace words that are never a vendor ("org.apache" → apache).
_NAMESPACE_NOISE = {"org", "com", "net", "io", "de", "fr", "ch", "uk", "co", "github", "gitlab", "sourceforge"}


class UnknownName(ValueError):
    """A typed name the dictionary does not know; ``suggestions`` are the closest names it does know."""

    def __init__(self, name: str, close: list[str]) -> None:
        hint = f" Closest known names: {', '.join(close)}." if close else ""
        super().__init__(f"“{name}” is not a vendor or product I know.{hint}")
        self.name = name
        self.suggestions = close


@dataclass(frozen=True)
class Resolved:
    vendor: str
    product: str
    version: str = ""
    cpe: str | None = None
    purl: str | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: Whether the dictionary knows the product (False: kept as stated).
    known: bool = True


def split_version(text: str) -> tuple[str, str]:
    """``"FortiGate 7.2.5"`` → (``"FortiGate"``, ``"7.2.5"``); a name without a version gives ``""``."""
    text = " ".join(text.split())
    m = _TRAILING_VERSION.match(text)
    if m and any(ch.isalpha() for ch in m["name"]):
        return m["name"], m["version"]
    return text, ""


def resolve_text(text: str, dictionary: VendorDictionary) -> Resolved:
    """A typed entry ("FortiGate 7.2.5", "Siemens CPCI85 V5.30", "cpe:2.3:…") → names; raises UnknownName."""
    text = " ".join(text.split())
    if text.lower().startswith(("cpe:2.3:", "cpe:/")):
        return resolve_component(Component(product="", cpe=text), dictionary)
    if text.lower().startswith("pkg:"):
        return resolve_component(Component(product="", purl=text), dictionary)
    name, version = split_version(text)
    found = _by_name(name, dictionary)
    if found is None:
        raise UnknownName(name, suggestions(name, dictionary))
    vendor, product, known = found
    return Resolved(vendor, product, version, known=known)


def _by_name(name: str, dictionary: VendorDictionary) -> tuple[str, str, bool] | None:
    """(vendor, product, known) for a typed name; product "" means the vendor as a whole."""
    exact = dictionary.canonical_product(name)
    if exact is not None:
        return exact[0], exact[1], True
    vendor = dictionary.canonical_vendor(name)
    if vendor is not None:
        return vendor, "", True
    matches = dictionary.find(name, lenient=True)
    products = [m for m in matches if m.product]
    if products:
        best = max(products, key=lambda m: m.end - m.start)
        rest = (name[: best.start] + " " + name[best.end :]).strip(" ,-")
        said = dictionary.find(rest, lenient=True) if rest else []
        if (
            not rest
            or dictionary.canonical_vendor(rest) == best.vendor
            or (said and all(m.vendor == best.vendor for m in said))
        ):
            return best.vendor, best.product or "", True
    vendors = [m for m in matches if not m.product]
    if vendors and vendors[0].start == 0:
        rest = name[vendors[0].end :].strip(" ,-")
        if rest:
            return vendors[0].vendor, rest, False  # a known vendor's product the dictionary has not heard of
        return vendors[0].vendor, "", True
    return None


def resolve_component(component: Component, dictionary: VendorDictionary) -> Resolved:
    """A component from a file → names; never raises: what the dictionary does not know is kept as stated."""
    vendor, product, version = component.vendor.strip(), component.product.strip(), component.version.strip()
    aliases: list[str] = []
    namespace = component.namespace
    if component.cpe:
        parts = cpe_parts(component.cpe)
        if parts is not None:
            cpe_vendor, cpe_product, cpe_version = parts
            vendor = vendor or cpe_vendor.replace("_", " ")
            product = product or cpe_product.replace("_", " ")
            version = version or (cpe_version if cpe_version not in ("*", "-") else "")
            aliases.append(cpe_product.replace("_", " "))
    if component.purl and _purl_adds_something(component.purl, product, version, namespace):
        try:
            purl = PackageURL.from_string(component.purl)
        except ValueError:
            purl = None
        if purl is not None:
            product = product or purl.name
            version = version or (purl.version or "")
            namespace = purl.namespace or namespace
    if not product:
        return Resolved(vendor, "", version, component.cpe, component.purl, known=False)
    canonical_vendor = dictionary.canonical_vendor(vendor) if vendor else _vendor_from_namespace(namespace, dictionary)
    for candidate in _candidates(product, canonical_vendor or vendor):
        found = dictionary.canonical_product(candidate)
        if found is None or (canonical_vendor and found[0] != canonical_vendor):
            continue
        if (
            not canonical_vendor
            and candidate.lower() != product.lower()
            and not _namespace_agrees(candidate, namespace)
        ):
            continue  # "spring-core" of org.springframework is Spring, but "java-client" of io.appium is not Java
        if product.lower() != found[1].lower():
            aliases.append(product)
        return Resolved(found[0], found[1], version, component.cpe, component.purl, tuple(dict.fromkeys(aliases)))
    if not vendor and not namespace:
        exact = _by_name(product, dictionary)
        if exact is not None and exact[1] and exact[2]:
            return Resolved(exact[0], exact[1], version, component.cpe, component.purl, (product,))
    # "keycloak-parent" of org.keycloak is also "keycloak"; "java-client" of io.appium is not "java".
    aliases += [c for c in _candidates(product, "")[1:] if _namespace_agrees(c, namespace)]
    return Resolved(
        canonical_vendor or vendor,
        product,
        version,
        component.cpe,
        component.purl,
        tuple(dict.fromkeys(a for a in aliases if a.lower() != product.lower())),
        known=False,
    )


def _namespace_agrees(shortened: str, namespace: str) -> bool:
    """Whether a shortened package name is backed by its namespace (no namespace: nothing contradicts it)."""
    if not namespace:
        return True
    first = re.split(r"[\s_-]+", shortened.lower())[0]
    return bool(first) and first in namespace.lower()


def _purl_adds_something(purl: str, product: str, version: str, namespace: str) -> bool:
    """Whether parsing the purl could tell more than the component's own fields (parsing costs ~0.3 ms)."""
    if not product or not version:
        return True
    path = purl.split("?", 1)[0].split("@", 1)[0]
    return not namespace and path.count("/") >= 2  # "pkg:maven/org.apache…/log4j": a namespace to read


def _candidates(product: str, vendor: str) -> list[str]:
    names = [product]
    stripped = product
    while True:
        shorter = _ARTIFACT_TAIL.sub("", stripped)
        if shorter == stripped or not shorter:
            break
        stripped = shorter
        names.append(stripped)
    spaced = [n.replace("-", " ").replace("_", " ") for n in names]
    out = names + spaced
    if vendor:
        out += [f"{vendor} {n}" for n in spaced]
    return list(dict.fromkeys(out))


@lru_cache(maxsize=8192)
def _vendor_from_namespace(namespace: str, dictionary: VendorDictionary) -> str:
    """``org.apache.logging.log4j`` → Apache; ``@angular`` → Angular (when the dictionary knows it)."""
    for word in re.split(r"[./@:]+", namespace.lower()):
        if word and word not in _NAMESPACE_NOISE:
            found = dictionary.canonical_vendor(word)
            if found:
                return found
    return ""


#: A CPE 2.3 formatted string: "cpe:2.3:" then 11 attributes separated by colons that are not escaped.
_CPE_SEPARATOR = re.compile(r"(?<!\\):")
_CPE_PART = {"a", "o", "h", "*", "-"}


@lru_cache(maxsize=65536)
def cpe_parts(name: str) -> tuple[str, str, str] | None:
    """(vendor, product, version) of a CPE 2.3 formatted string, unescaped; None when it is not one.

    Split by hand from the specification's grammar (NISTIR 7695 §6.2): the ``cpe`` package parses
    every binding and takes about 3 ms a name, which would make a 10,000-component SBOM take 30 s.
    """
    parts = _CPE_SEPARATOR.split(name.strip())
    if len(parts) != 13 or parts[0].lower() != "cpe" or parts[1] != "2.3" or parts[2].lower() not in _CPE_PART:
        return None
    vendor, product, version = (re.sub(r"\\(.)", r"\1", p) for p in parts[3:6])
    if vendor in ("", "*", "-") or product in ("", "*", "-") or any(" " in p for p in parts):
        return None
    return vendor, product, version or "*"


def suggestions(name: str, dictionary: VendorDictionary, limit: int = 5) -> list[str]:
    """The dictionary's names closest to ``name`` ("Fortigat" → FortiGate's product, Fortinet)."""
    names = _known_names(dictionary)
    key = name.lower()
    close = difflib.get_close_matches(key, list(names), n=limit, cutoff=0.6)
    words = [w for w in re.split(r"\W+", key) if len(w) >= 3]
    for word in words:
        close += difflib.get_close_matches(word, list(names), n=3, cutoff=0.75)
    return list(dict.fromkeys(names[c] for c in close))[:limit]


@lru_cache(maxsize=4)
def _known_names(dictionary: VendorDictionary) -> dict[str, str]:
    names: dict[str, str] = {}
    for vendor, product in dictionary.products:
        names.setdefault(product.lower(), f"{vendor} {product}" if not product.startswith(vendor) else product)
        names.setdefault(f"{vendor} {product}".lower(), f"{vendor} {product}")
    for vendor in dictionary.vendors:
        names.setdefault(vendor.lower(), vendor)
    return names
