"""Images are pinned: a tag other than latest, or a digest.

Passing::

    image: docker.io/library/redis:7.2.4        # or redis@sha256:<digest>

Failing::

    image: redis            # no tag means latest
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tools.lint.finding import Finding, Severity
from tools.lint.model import Index
from tools.lint.rules._base import Reporter

ID = "image-pinned"
SEVERITY = Severity.ERROR
DESCRIPTION = "Every container image has a tag that is not latest (or a digest)."
REMEDIATION = "Pin the image to a released version tag (for example redis:7.2.4) or to a digest (@sha256:...)."
OPTIONS: dict[str, Any] = {"forbidden-tags": ["latest"]}
EQUIVALENTS = {
    "kube-linter": "`latest-tag`",
    "Polaris": "`tagNotSpecified`",
    "kube-score": "`container-image-tag`",
    "checkov": "CKV_K8S_14 (CKV_K8S_43 demands digests)",
}
report = Reporter(ID, SEVERITY, REMEDIATION)


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none); digests are handled by the caller."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check(index: Index, options: Mapping[str, Any]) -> Iterator[Finding]:
    forbidden = set(options["forbidden-tags"])
    for w, c in index.iter_containers():
        image = c.spec.get("image")
        if not isinstance(image, str) or not image.strip():
            yield report(w.obj, f"{c.path}.image", f"container {c.name!r} has no image", c.name)
            continue
        if "@sha256:" in image or "@sha512:" in image:
            continue
        tag = image_tag(image)
        if tag is None:
            yield report(w.obj, f"{c.path}.image", f"image {image!r} has no tag (means latest)", c.name)
        elif tag in forbidden:
            yield report(w.obj, f"{c.path}.image", f"image {image!r} uses the floating tag {tag!r}", c.name)
