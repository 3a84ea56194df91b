from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from samn_tracker import backbones
from samn_tracker.backbones import (BN_EPS, IMAGENET_MEAN, IMAGENET_STD, build_backbone,
                                    freeze_batchnorm, lite0_imagenet_path)
from samn_tracker.errors import InputError
from samn_tracker.weights import WeightFile, sha256_file

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
BLACK_SWAN = 100  # ImageNet class index


def bn_keys(prefix: str) -> list[str]:
    return [f"{prefix}.{n}" for n in ("weight", "bias", "running_mean", "running_var",
                                      "num_batches_tracked")]


def torchvision_resnet50_state_dict() -> dict[str, torch.Tensor]:
    """Random tensors under torchvision's resnet50 key set, shapes from the architecture."""
    def bn(prefix: str, c: int) -> dict[str, torch.Tensor]:
        shapes = [(c,), (c,), (c,), (c,), ()]
        return {k: (torch.tensor(0) if s == () else torch.rand(s) + 0.5)
                for k, s in zip(bn_keys(prefix), shapes)}

    sd = {"conv1.weight": torch.randn(64, 3, 7, 7) * 0.1, **bn("bn1", 64)}
    inplanes = 64
    for layer, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], 1):
        for i in range(blocks):
            p = f"layer{layer}.{i}"
            sd[f"{p}.conv1.weight"] = torch.randn(planes, inplanes, 1, 1) * 0.05
            sd.update(bn(f"{p}.bn1", planes))
            sd[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3) * 0.05
            sd.update(bn(f"{p}.bn2", planes))
            sd[f"{p}.conv3.weight"] = torch.randn(planes * 4, planes, 1, 1) * 0.05
            sd.update(bn(f"{p}.bn3", planes * 4))
            if i == 0:
                sd[f"{p}.downsample.0.weight"] = torch.randn(planes * 4, inplanes, 1, 1) * 0.05
                sd.update(bn(f"{p}.downsample.1", planes * 4))
            inplanes = planes * 4
    sd["fc.weight"] = torch.randn(1000, 2048) * 0.01
    sd["fc.bias"] = torch.zeros(1000)
    return sd


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    sd = torchvision_resnet50_state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet50-test.pth"
    torch.save(sd, path)
    return path, sd


def test_resnet50_loads_torchvision_state_dict(resnet_file):
    path, sd = resnet_file
    assert len(sd) == 320  # torchvision's resnet50 has 320 state-dict entries
    model = build_backbone("resnet50", weights_path=path)
    own = model.state_dict()
    assert set(own) == {k for k in sd if not k.startswith(("layer4.", "fc."))}
    for key, value in own.items():
        assert torch.equal(value, sd[key]), key


def test_resnet50_rejects_missing_unexpected_and_misshaped_keys(resnet_file, tmp_path):
    _, sd = resnet_file
    broken = {
        "missing": {k: v for k, v in sd.items() if k != "layer2.1.bn2.running_var"},
        "unexpected": {**sd, "layer3.0.extra.weight": torch.zeros(1)},
        "shape": {**sd, "layer1.0.conv1.weight": torch.zeros(64, 64, 3, 3)},
    }
    for name, state in broken.items():
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        with pytest.raises(InputError, match=name + ".pth"):
            build_backbone("resnet50", weights_path=path)


def test_resnet50_strides_and_channels():
    model = build_backbone("resnet50", pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model(x)
        again = model.forward_from_stem(model.stem_conv(x))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "s4": (2, 256, 16, 16), "s8": (2, 512, 8, 8), "s16": (2, 1024, 4, 4)}
    assert model.channels == {"s4": 256, "s8": 512, "s16": 1024}
    assert all(torch.equal(feats[k], again[k]) for k in feats)
    assert model.stem_conv.in_channels == 3 and model.stem_conv.stride == (2, 2)


def test_resnet50_pretrained_downloads_through_weights_cache(resnet_file, tmp_path, monkeypatch):
    path, sd = resnet_file
    spec = WeightFile("resnet50-test.pth", path.as_uri(), sha256_file(path)[:8])
    monkeypatch.setattr(backbones, "RESNET50_IMAGENET", spec)
    monkeypatch.setenv("SAMN_CACHE", str(tmp_path / "cache"))
    model = build_backbone("resnet50", pretrained=True)
    assert (tmp_path / "cache" / "resnet50-test.pth").is_file()
    assert torch.equal(model.layer3[5].conv3.weight, sd["layer3.5.conv3.weight"])


def test_unknown_backbone_and_unreadable_weights(tmp_path):
    with pytest.raises(ValueError, match="mobilenet"):
        build_backbone("mobilenet")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="bad.pth"):
        build_backbone("efficientnet_lite0", weights_path=bad)
    with pytest.raises(InputError, match="absent.pth"):
        build_backbone("efficientnet_lite0", weights_path=tmp_path / "absent.pth")


# ------------------------------------------------------------------ EfficientNet-Lite0

@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_imagenet_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0(lite0_state) -> backbones.Backbone:
    return build_backbone("efficientnet_lite0").eval()


def test_lite0_keys_match_shipped_file_up_to_block_10(lite0, lite0_state):
    head = {k for k in lite0_state
            if k.startswith(("_conv_head.", "_bn1.", "_fc."))
            or (k.startswith("_blocks.") and int(k.split(".")[1]) >= 11)}
    assert set(lite0.state_dict()) == set(lite0_state) - head
    for key, value in lite0.state_dict().items():
        assert torch.equal(value, lite0_state[key]), key


def blackswan_crop(size: int = 224) -> torch.Tensor:
    """First blackswan frame cropped square around its ground-truth box, normalised."""
    if not DAVIS.is_dir():
        pytest.skip(f"DAVIS 2016 test data not found at {DAVIS}")
    x, y, w, h = (float(v) for v in
                  (DAVIS / "boxes" / "blackswan.txt").read_text().splitlines()[0].split(","))
    side = 1.15 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    image = Image.open(DAVIS / "JPEGImages" / "480p" / "blackswan" / "00000.jpg").convert("RGB")
    crop = image.crop((round(cx - side / 2), round(cy - side / 2),
                       round(cx + side / 2), round(cy + side / 2)))
    crop = crop.resize((size, size), Image.BILINEAR)
    rgb = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return ((rgb - mean) / std)[None]


def classify_from_s16(s16: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """ImageNet logits: blocks 11-15, head, pooling and fc of the shipped file, applied
    functionally to the backbone's stride-16 output."""
    def bn(x, p):
        return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"],
                            sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, BN_EPS)

    x = s16
    for i, stride in [(11, 2), (12, 1), (13, 1), (14, 1), (15, 1)]:
        p = f"_blocks.{i}"
        dw = sd[f"{p}._depthwise_conv.weight"]
        y = F.relu6(bn(F.conv2d(x, sd[f"{p}._expand_conv.weight"]), f"{p}._bn0"))
        y = F.relu6(bn(F.conv2d(y, dw, stride=stride, padding=dw.shape[-1] // 2,
                                groups=dw.shape[0]), f"{p}._bn1"))
        y = bn(F.conv2d(y, sd[f"{p}._project_conv.weight"]), f"{p}._bn2")
        x = x + y if y.shape == x.shape else y
    x = F.relu6(bn(F.conv2d(x, sd["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def test_lite0_imagenet_features_on_davis_frame(lite0, lite0_state):
    x = blackswan_crop()
    with torch.no_grad():
        feats = lite0(x)
        logits = classify_from_s16(feats["s16"], lite0_state)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "s4": (1, 24, 56, 56), "s8": (1, 40, 28, 28), "s16": (1, 112, 14, 14)}
    assert lite0.channels == {"s4": 24, "s8": 40, "s16": 112}
    assert all(torch.isfinite(v).all() for v in feats.values())
    assert BLACK_SWAN in logits.topk(5).indices[0].tolist()


def test_lite0_random_init_does_not_recognise_the_swan(lite0_state):
    """Control for the test above: the classification needs the loaded weights."""
    torch.manual_seed(0)
    model = build_backbone("efficientnet_lite0", pretrained=False).eval()
    with torch.no_grad():
        probs = classify_from_s16(model(blackswan_crop())["s16"], lite0_state).softmax(1)
    assert probs[0, BLACK_SWAN] < 0.5


def test_freeze_batchnorm_survives_train_mode():
    torch.manual_seed(0)
    model = build_backbone("efficientnet_lite0", pretrained=False)
    keys = set(model.state_dict())
    freeze_batchnorm(model).train()
    bn = model._blocks[3]._bn1
    before = bn.running_mean.clone()
    out = model(torch.randn(2, 3, 32, 32))["s16"]
    out.mean().backward()
    assert not bn.training and torch.equal(bn.running_mean, before)
    assert bn.weight.grad is None and not bn.weight.requires_grad
    assert model._blocks[3]._depthwise_conv.weight.grad is not None
    assert set(model.state_dict()) == keys
