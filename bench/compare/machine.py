"""What differs between the machines two runs ran on, from their manifests' provenance."""

from __future__ import annotations

from dataclasses import dataclass

# (label, path in manifest["provenance"]); a difference in any is reported.
FIELDS = [
    ("device", ("device", "device")),
    ("device name", ("device", "device_name")),
    ("torch", ("versions", "torch")),
    ("torchvision", ("versions", "torchvision")),
    ("torchattacks", ("versions", "torchattacks")),
    ("torch-fidelity", ("versions", "torch-fidelity")),
    ("CPU count", ("machine", "cpu_count")),
    ("torch threads", ("device", "torch_threads")),
]
# Speed and memory are only comparable when these agree.
DEVICE_FIELDS = {"device", "device name"}


@dataclass(frozen=True)
class MachineDiff:
    differences: list[tuple[str, object, object]]  # (what, baseline, candidate)

    @property
    def cross_device(self) -> bool:
        return any(what in DEVICE_FIELDS for what, _, _ in self.differences)

    def notes(self) -> list[str]:
        return [f"{what} differs: baseline {b!r}, candidate {c!r}" for what, b, c in self.differences]


def machine_diff(base_manifest: dict, cand_manifest: dict) -> MachineDiff:
    diffs = []
    for label, path in FIELDS:
        b, c = _get(base_manifest, path), _get(cand_manifest, path)
        if b != c:
            diffs.append((label, b, c))
    # Run settings that change kernels, not what a cell is (absent before the key: off).
    b, c = (bool(m.get("deterministic", False)) for m in (base_manifest, cand_manifest))
    if b != c:
        diffs.append(("deterministic kernels", b, c))
    b, c = (_code(m) for m in (base_manifest, cand_manifest))
    if b != c:  # expected when comparing two versions of bench; said so the reader knows
        diffs.append(("bench code", b, c))
    return MachineDiff(diffs)


def _code(manifest: dict) -> str | None:
    code = manifest.get("code")
    return code.get("source_sha256", "")[:12] or None if isinstance(code, dict) else None


def _get(manifest: dict, path: tuple[str, ...]):
    value = manifest.get("provenance", {})
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value
