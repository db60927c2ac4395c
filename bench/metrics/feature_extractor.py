"""The domain feature extractor: a small classifier trained on the dataset, plugged into torch-fidelity.

Inception features mean little on 8×8 digits, and its weights need a download. So by default
FID/KID/PRC use the 64-d penultimate layer of a small CNN trained on the dataset's train split,
and the Inception Score uses its logits. The "extractor" cell trains it once; its weights file
(a dict of tensors and plain values, loaded with weights_only=True) carries the architecture
and the hash of its own trained weights, and the torch-fidelity name `bench-domain-<hash>`
says which weights produced a number: FIDs are comparable only for the same name.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity import FeatureExtractorBase, register_feature_extractor
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from bench.fingerprint import state_dict_fingerprint
from bench.seeding import seeded

NAME_PREFIX = "bench-domain-"
FEATURES = "penultimate"  # feature name for FID, KID and PRC
LOGITS = "logits"  # feature name for the Inception Score
FEATURE_DIM = 64
WEIGHTS_FORMAT = 1


class DomainNet(nn.Module):
    """conv 32 -> conv 64 /2 -> conv 128 /2 -> global average -> 64 (features) -> classes.

    Global pooling makes it work for any image size from 8×8 up.
    """

    def __init__(self, channels: int, num_classes: int, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, 2, 1), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) for float images in [0, 1]."""
        features = self.body(x)
        return features, self.head(features)


def extractor_name(weights_hash: str) -> str:
    return f"{NAME_PREFIX}{weights_hash}"


def weights_payload(net: DomainNet, channels: int, num_classes: int,
                    test_accuracy: float) -> dict:
    """The weights file's content; "hash" identifies the extractor by its own weights."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return {
        "format": WEIGHTS_FORMAT,
        "hash": state_dict_fingerprint(state),
        "channels": channels,
        "num_classes": num_classes,
        "feature_dim": net.head.in_features,
        "test_accuracy": float(test_accuracy),
        "state_dict": state,
    }


def load_weights(path: str | Path) -> dict:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path}: not a bench domain-extractor weights file (format {WEIGHTS_FORMAT})")
    return payload


def net_from_payload(payload: dict) -> DomainNet:
    net = DomainNet(payload["channels"], payload["num_classes"], payload["feature_dim"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 N×C×H×W in, (penultimate features, logits) out.

    torch-fidelity constructs it as cls(name, features_list, **calculate_metrics kwargs), so the
    weights arrive as `feature_extractor_weights_path`; their hash must match the name.
    `feature_extractor_internal_dtype` "float64" runs the net in float64, as torch-fidelity's
    own extractors do. Gray images read as RGB (torch-fidelity's folder input always gives
    three planes) are taken back to one plane when the planes are equal.
    """

    def __init__(self, name: str, features_list, feature_extractor_weights_path=None,
                 feature_extractor_internal_dtype=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_internal_dtype not in (None, "float32", "float64"):
            raise ValueError(f"{name}: feature_extractor_internal_dtype must be float32 or "
                             f"float64, got {feature_extractor_internal_dtype!r}")
        if feature_extractor_weights_path is None:
            raise ValueError(f"{name}: pass feature_extractor_weights_path (the extractor cell's weights)")
        payload = load_weights(feature_extractor_weights_path)
        if name != extractor_name(payload["hash"]):
            raise ValueError(f"{feature_extractor_weights_path} holds extractor "
                             f"{extractor_name(payload['hash'])!r}, not {name!r}")
        if state_dict_fingerprint(payload["state_dict"]) != payload["hash"]:
            raise ValueError(f"{feature_extractor_weights_path}: its weights do not hash to the "
                             f"{payload['hash']!r} it claims (a modified or corrupt file)")
        self.dtype = torch.float64 if feature_extractor_internal_dtype == "float64" else torch.float32
        self.net = net_from_payload(payload).to(self.dtype)
        self.channels = payload["channels"]
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return FEATURES, LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": LOGITS, "fid": FEATURES, "kid": FEATURES, "prc": FEATURES}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, 8, 8, dtype=torch.uint8)

    def forward(self, x: torch.Tensor):
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"expected uint8 N×C×H×W images, got {x.dtype} {tuple(x.shape)}")
        if self.channels == 1 and x.shape[1] == 3:
            if not bool((x[:, 1:] == x[:, :1]).all()):
                raise ValueError(f"{self.name} was trained on gray images; got colour ones "
                                 f"(3 planes that differ)")
            x = x[:, :1]
        features, logits = self.net(x.to(self.dtype) / 255)
        out = {FEATURES: features, LOGITS: logits}
        return tuple(out[name] for name in self.features_list)


def ensure_registered(name: str) -> None:
    """Register `name` with torch-fidelity once per process (its registry refuses duplicates)."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, DomainFeatureExtractor)
    elif FEATURE_EXTRACTORS_REGISTRY[name] is not DomainFeatureExtractor:
        raise ValueError(f"torch-fidelity feature extractor {name!r} is already taken")


def train_extractor(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int, lr: float,
                    batch_size: int, seed: int, device: str = "cpu") -> DomainNet:
    """Fit a DomainNet on images `x` in [0, 1] with labels `y` (Adam, cross-entropy)."""
    gen = torch.Generator().manual_seed(seed)
    with seeded(seed):  # reproducible init without touching the caller's RNG
        net = DomainNet(x.shape[1], num_classes)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = x.to(device), y.to(device)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            if len(idx) < 2:
                continue  # BatchNorm cannot train on a batch of one
            idx = idx.to(device)
            _, logits = net(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.cpu().eval()


@torch.no_grad()
def accuracy(net: DomainNet, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = sum(int((net(xb)[1].argmax(1) == yb).sum()) for xb, yb in zip(x.split(512), y.split(512)))
    return correct / max(1, len(y))
