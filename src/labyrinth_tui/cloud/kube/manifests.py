"""The article's manifests (1.yaml, 2.yaml) as package data, parsed and checked before anything is applied."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from labyrinth_tui.cloud import ASSETS
from labyrinth_tui.cloud.kube.errors import ManifestError

DEFAULT_IMAGE: Final = "docker.io/seantywork/ubuntu24"
# what apply() knows how to create or update
KINDS: Final = {("v1", "Service"), ("apps/v1", "Deployment"), ("v1", "Namespace")}
# the article: `kubectl -n wrk-1 apply -f ./1.yaml`, `kubectl -n wrk-2 apply -f ./2.yaml`
JOURNEY: Final = (("1.yaml", "wrk-1"), ("2.yaml", "wrk-2"))
_DNS_LABEL_MAX: Final = 63


@dataclass(frozen=True, slots=True)
class Manifest:
    """Objects to apply into `namespace` (each object's own metadata.namespace must agree)."""

    source: str
    namespace: str
    objects: tuple[dict[str, Any], ...]

    def names(self) -> list[str]:
        """`service/node-wrk-1-ubuntu24`, … as kubectl prints them."""
        return [f"{obj['kind'].lower()}/{obj['metadata']['name']}" for obj in self.objects]


def _check_name(source: str, value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(source, f"{what} is missing or not text")
    ok = len(value) <= _DNS_LABEL_MAX and value.replace("-", "a").replace(".", "a").isalnum()
    if not ok or not value[0].isalnum() or not value[-1].isalnum() or value.lower() != value:
        raise ManifestError(source, f"{what} {value!r} is not a valid Kubernetes name")
    return value


def parse_manifest(text: str, source: str, namespace: str) -> Manifest:
    """Every document of `text` checked; `namespace` is where they go (kubectl's `-n`)."""
    _check_name(source, namespace, "namespace")
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(source, f"not valid YAML{at}: {problem}") from None
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(documents, start=1):
        if doc is None:  # an empty document between two `---`
            continue
        label = f"document {index}"
        if not isinstance(doc, dict):
            raise ManifestError(source, f"{label} is a {type(doc).__name__}, not a Kubernetes object")
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in KINDS:
            known = ", ".join(sorted(f"{v} {k}" for v, k in KINDS))
            raise ManifestError(source, f"{label}: apiVersion/kind {key[0]}/{key[1]} is not one of: {known}")
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict):
            raise ManifestError(source, f"{label} ({key[1]}) has no metadata")
        name = _check_name(source, metadata.get("name"), f"{label} ({key[1]}) metadata.name")
        declared = metadata.get("namespace")
        if key[1] != "Namespace" and declared is not None and declared != namespace:
            raise ManifestError(
                source, f"{key[1]} {name} says namespace {declared!r} but is applied into {namespace!r}"
            )
        if key[1] == "Deployment":
            _check_deployment(source, name, doc)
        objects.append(doc)
    if not objects:
        raise ManifestError(source, "holds no Kubernetes object")
    return Manifest(source, namespace, tuple(objects))


def _check_deployment(source: str, name: str, doc: dict[str, Any]) -> None:
    spec = doc.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ManifestError(source, f"Deployment {name} has no spec.template.spec.containers")
    for container in containers:
        if not isinstance(container, dict) or not container.get("image"):
            raise ManifestError(source, f"Deployment {name}: every container needs a name and an image")


def with_image(manifest: Manifest, image: str) -> Manifest:
    """The same manifest with every Deployment container running `image` (the article's is the default)."""
    if not image or any(c.isspace() for c in image):
        raise ManifestError(manifest.source, f"image {image!r} is not an image reference")
    objects = copy.deepcopy(list(manifest.objects))
    for obj in objects:
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
    return Manifest(manifest.source, manifest.namespace, tuple(objects))


def load_manifest(path: Path, namespace: str) -> Manifest:
    """A manifest file of the user's; unreadable or unparsable gives a ManifestError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), f"cannot read it ({exc})") from None
    return parse_manifest(text, str(path), namespace)


def journey_manifests(image: str = DEFAULT_IMAGE) -> list[Manifest]:
    """The article's 1.yaml (into wrk-1) and 2.yaml (into wrk-2), with `image` in their Deployments."""
    return [with_image(load_manifest(ASSETS / name, namespace), image) for name, namespace in JOURNEY]
