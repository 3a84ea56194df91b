"""The light memory pass (``model.memory_pass="query"``) and its distillation from the
shipped model's memory encoder, on real DAVIS frames."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from samn_tracker.config import preset
from samn_tracker.crops import crop_image, crop_mask, window_around
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.errors import InputError
from samn_tracker.model.network import SAMNNetwork
from samn_tracker.regions import mask_to_box
from samn_tracker.tracker import SAMNTracker
from samn_tracker.train.distill import DistillConfig, Distiller, main as distill_main, relative_errors, soften
from samn_tracker.weights import builtin_checkpoint, load_checkpoint

QUERY_PASS = {"model.memory_pass": "query"}


def real_crops(root, name: str, frames: range, size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops around the ground-truth object, as the tracker memorises them, and their masks."""
    sequence = davis_sequence(root, name)
    images, masks = [], []
    for i in frames:
        window = window_around(mask_to_box(sequence.groundtruth[i]), 4.0, size)
        images.append(crop_image(sequence.image(i), window))
        masks.append(crop_mask(sequence.groundtruth[i], window))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, torch.from_numpy(np.stack(masks)).float()[:, None]


def test_the_query_memory_pass_has_no_backbone_and_reads_the_given_features():
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").replace(**QUERY_PASS).model).eval()
    assert len(net.backbones()) == 1
    assert not any(k.startswith("memory_encoder.backbone.") for k in net.state_dict())
    crops = torch.rand(2, 3, 128, 128)
    masks = (torch.rand(2, 1, 128, 128) > 0.5).float()
    with torch.no_grad():
        s16 = net.encode_query(crops).s16
        given = net.encode_memory(crops, masks, s16)
        computed = net.encode_memory(crops, masks)  # no features at hand: one query pass more
        other_mask = net.encode_memory(crops, 1 - masks, s16)
        other_features = net.encode_memory(crops, masks, s16.flip(0))
    assert given[0].shape == (2, 32, 8, 8) and given[1].shape == (2, 128, 8, 8)
    for a, b in zip(given, computed):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(given[1], other_mask[1])
    assert not torch.allclose(given[1], other_features[1])


def test_each_memory_pass_loads_its_own_built_in_weights_and_refuses_the_other():
    """``lite`` memorises on the query features with ``lite-query.pth``; with
    ``model.memory_pass=backbone`` it loads ``lite.pth``, which predates the field (it was
    made with the default, the memory encoder's own backbone). Each refuses the other's
    weights, saying which setting fits them."""
    query_pass, backbone_pass = builtin_checkpoint("lite", "query"), builtin_checkpoint("lite", "backbone")
    assert preset("lite").model.memory_pass == "query"
    assert SAMNTracker("lite", device="cpu").weights == query_pass
    paper_lite = preset("lite").replace(**{"model.memory_pass": "backbone"})
    assert SAMNTracker(paper_lite, device="cpu").weights == backbone_pass
    assert "memory_pass" not in load_checkpoint(backbone_pass)["config"]["model"]
    with pytest.raises(InputError, match="--set model.memory_pass=backbone"):
        SAMNTracker("lite", weights=backbone_pass, device="cpu")
    with pytest.raises(InputError, match="--set model.memory_pass=query"):
        SAMNTracker(paper_lite, weights=query_pass, device="cpu")


def test_soften_grows_shrinks_and_blurs_only_the_drawn_fraction():
    masks = torch.zeros(64, 1, 32, 32)
    masks[:, :, 8:24, 8:24] = 1
    same = soften(masks, torch.Generator().manual_seed(0), fraction=0.0)
    torch.testing.assert_close(same, masks)
    soft = soften(masks, torch.Generator().manual_seed(0), fraction=1.0)
    assert soft.min() >= 0 and soft.max() <= 1
    areas = soft.sum((1, 2, 3))
    assert (areas > masks[0].sum() + 1).any() and (areas < masks[0].sum() - 1).any()
    assert ((soft > 0.05) & (soft < 0.95)).any()  # some are blurred
    half = soften(masks, torch.Generator().manual_seed(0), fraction=0.5)
    changed = (half != masks).flatten(1).any(1).float().mean()
    assert 0.2 < changed < 0.8


def test_the_student_starts_at_the_teacher_heads_and_learns_the_mask(davis_root, tmp_path):
    """Distillation of the shipped lite model: the student starts as the teacher's heads on
    the query features (the mask's effect is zero); after a short run on the training
    sequences it gives the teacher's values more closely, and its checkpoint tracks an
    evaluation sequence without first-frame tuning's help."""
    crops, masks = real_crops(davis_root, "camel", range(0, 80, 10))
    teacher_cfg = DistillConfig(held_out=[])
    before = Distiller(teacher_cfg, torch.device("cpu"))
    with torch.no_grad():
        s16, teacher = before.targets(crops, masks)
        start = before.outputs(masks, s16)
        torch.testing.assert_close(start["value"], before.teacher.memory_encoder.value(s16))
        start_errors = relative_errors(start, teacher)

    out = tmp_path / "run"
    common = ["--samples", "64", "--set", f"sources={json.dumps([f'davis:{davis_root}:2016:train'])}",
              "--set", "source_weights=[]", "--set", "held_out=[]", "--set", "batch_size=2",
              "--set", f"out_dir={out}", "--set", "checkpoint_every=10"]
    assert distill_main(common + ["--set", "steps=30"]) == 0
    export = tmp_path / "lite_query.pth"
    assert distill_main(common + ["--set", "steps=32", "--set", "lr=0.0002", "--resume", "--export", str(export),
                                  "--no-progress"]) == 0
    assert load_checkpoint(out / "last.pth")["meta"]["optimiser"]["param_groups"][0]["lr"] == 0.0002  # not 1e-3
    with open(out / "log.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, 33))
    assert (out / "curve.png").stat().st_size > 0

    shipped = load_checkpoint(export)
    assert shipped["meta"]["step"] == 32 and "optimiser" not in shipped["meta"]
    assert shipped["config"]["model"]["memory_pass"] == "query"
    untuned = preset("lite").replace(**QUERY_PASS, **{"tuning.steps": 0})  # the student's masks alone
    tracker = SAMNTracker(untuned, weights=export, device="cpu")
    with torch.no_grad():
        learnt = tracker.net.memory_encoder(masks, s16)
    errors = relative_errors({"features": s16, "key": learnt[0], "value": learnt[1]}, teacher)
    assert errors["value"] < 0.8 * start_errors["value"]

    sequence = davis_sequence(davis_root, "car-shadow")
    tracker.initialize(sequence.image(0), sequence.groundtruth[0])
    ious = []
    for i in range(1, 15):
        mask, truth = tracker.track(sequence.image(i)).mask, sequence.groundtruth[i]
        ious.append((mask & truth).sum() / (mask | truth).sum())
    assert np.mean(ious) > 0.85, ious


def test_distill_checks_its_options_and_sources_before_work(davis_root, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    common = ["--set", "source_weights=[]", "--set", "held_out=[]"]
    run = ["--set", f"out_dir={tmp_path / 'run'}"]
    for bad, says in ((run + ["--samples", "0"], "--samples 0"), (run + ["--samples", "-5"], "--samples -5"),
                      (run + ["--set", f"sources={json.dumps([f'davis:{davis_root}:20x16'])}"], "whole number"),
                      (run + ["--set", "steps=0"], "steps=0"), (run + ["--export", str(tmp_path)], "is a folder"),
                      (["--set", f"out_dir={tmp_path / 'afile' / 'sub'}"], "afile is a file")):
        assert distill_main(common + bad) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "run").exists()


def test_distill_resume_refuses_changed_settings(tmp_path, capsys):
    from samn_tracker.weights import save_checkpoint

    out = tmp_path / "run"
    save_checkpoint(out / "last.pth", {}, step=5, train={"distill": DistillConfig(out_dir=str(out)).to_dict()})
    assert distill_main(["--resume", "--set", f"out_dir={out}", "--set", "batch_size=3",
                         "--set", "lr=0.0002", "--set", "steps=6"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "batch_size 8 -> 3" in err and "lr " not in err, err
    assert "(only out_dir, steps, lr, checkpoint_every, device may change)" in err, err  # distill's own
