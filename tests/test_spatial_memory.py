"""Spatial memory (online DCF): solver correctness, sample bookkeeping, augmentation and
localisation on real DAVIS frames with hand-made (network-free) features."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samn_tracker.config import DCFConfig
from samn_tracker.crops import CropWindow, crop_image, window_around
from samn_tracker.model.spatial_memory import (INIT_WEIGHT_FLOOR, MIN_LABEL_SIGMA, SpatialMemory, apply_filter,
                                               augment_first_frame, correlate_taps, correlate_taps_folded,
                                               filter_adjoint, gauss_newton_step, gaussian_labels, label_sigma,
                                               project, refit_filters, refit_pass)
from samn_tracker.model.graphs import BatchBuckets
from samn_tracker.datasets import read_image
from tests.conftest import read_boxes

STRIDE = 16
CROP = 256


def cell_features(crop: np.ndarray) -> torch.Tensor:
    """(1, 21, H/16, W/16) features: a 9-bin gradient-orientation histogram and the mean
    colour of each quarter of every 16x16 cell, the way HOG/colour DCFs see an image."""
    img = crop.astype(np.float32) / 255.0
    gray = img.mean(axis=2)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.hypot(gx, gy)
    bins = (np.mod(np.arctan2(gy, gx), np.pi) / np.pi * 9).astype(int) % 9
    h, w = gray.shape
    hog = np.stack([magnitude * (bins == b) for b in range(9)])
    hog = hog.reshape(9, h // STRIDE, STRIDE, w // STRIDE, STRIDE).mean(axis=(2, 4))
    colour = img.transpose(2, 0, 1).reshape(3, h // STRIDE, 2, STRIDE // 2, w // STRIDE, 2, STRIDE // 2)
    colour = colour.mean(axis=(3, 6)).transpose(0, 2, 4, 1, 3).reshape(12, h // STRIDE, w // STRIDE)
    return torch.from_numpy(np.concatenate([4.0 * hog, colour]))[None].float()


def pixel_to_cell(u: float) -> float:
    return (u - (STRIDE - 1) / 2.0) / STRIDE


def first_frame_samples(davis_root, name: str = "car-roundabout", count: int = 27):
    """Augmented first-frame features, their target centres and the target size (cells)."""
    box = read_boxes(davis_root, name)[0]
    window = window_around(box, 4.0, CROP)
    crop = crop_image(read_image(davis_root / "JPEGImages" / "480p" / name / "00000.jpg"), window)
    half = (CROP - 1) / 2.0
    crops, centres = augment_first_frame(crop, (half, half), np.random.default_rng(0), count)
    feats = torch.cat([cell_features(c) for c in crops])
    cells = torch.tensor([[pixel_to_cell(u), pixel_to_cell(v)] for u, v in centres])
    size = (box[2] * window.scale / STRIDE, box[3] * window.scale / STRIDE)
    return feats, cells, size, window


def reference_objective(sm: SpatialMemory, feats, centres, size, filt, proj) -> torch.Tensor:
    """The documented objective written out independently: 1x1 conv projection, filter
    as conv2d with k//2 cells of padding before and (k-1)//2 after, uniform weights."""
    k = filt.shape[-1]
    z = F.conv2d(feats.double(), proj[:, :, None, None])
    out = F.conv2d(F.pad(z, (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)), filt[None])[:, 0]
    labels = gaussian(centres, sm.cfg.sigma_factor * math.sqrt(size[0] * size[1]), out.shape[1:])
    data = (out - labels).square().sum(dim=(1, 2)).mean()
    return data + sm.cfg.reg_filter * filt.square().sum() + sm.cfg.reg_proj * proj.square().sum()


def gaussian(centres: torch.Tensor, sigma: float, shape) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    d2 = (xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2
    return torch.exp(-d2.double() / (2 * sigma ** 2))


def test_labels_drawn_on_the_host_are_the_device_path_labels():
    """Tracked frames' labels are drawn in numpy, the first frame's in torch: one formula."""
    centres = np.array([[3.2, 4.1], [0.0, 7.5], [-1.5, 2.25]], dtype=np.float32)
    widths = np.array([[1.3], [0.25], [2.0]], dtype=np.float32)
    host = gaussian_labels(centres, widths, (9, 11))
    assert isinstance(host, np.ndarray) and host.shape == (3, 9, 11) and host.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(host),
                               gaussian_labels(torch.from_numpy(centres), torch.from_numpy(widths), (9, 11)),
                               rtol=1e-6, atol=1e-7)
    reference = gaussian(torch.from_numpy(centres[:1]), 1.3, (9, 11)).float()
    torch.testing.assert_close(torch.from_numpy(host[:1]), reference, rtol=1e-5, atol=1e-6)


def test_filter_cg_reaches_closed_form_ridge_solution(davis_root):
    feats, centres, size, _ = first_frame_samples(davis_root, count=4)
    feats = feats[:, :, 3:12, 2:13]  # a small problem: 4 samples of 9x11 cells
    centres = centres - torch.tensor([2.0, 3.0])
    cfg = DCFConfig(proj_dim=3, filter_size=4, init_gn_iters=1, init_cg_iters=1, update_cg_iters=200, update_interval=1)
    sm = SpatialMemory(cfg, feats.shape[1])
    sm.initialize(feats, centres, size)  # one short GN step: P fixed from here, f a start
    proj = sm.projection.double()
    assert sm.step()

    # Normal equations of sum_n w_n ||A_n f - y_n||^2 + reg ||f||^2 from an explicit im2col.
    k, (n, _, h, w) = cfg.filter_size, feats.shape
    z = F.pad(torch.einsum("dc,nchw->ndhw", proj, feats.double()), (k // 2, (k - 1) // 2) * 2)
    design = torch.stack([z[:, :, i:i + k, j:j + k].reshape(n, -1) for i in range(h) for j in range(w)], 1)
    labels = gaussian(centres, cfg.sigma_factor * math.sqrt(size[0] * size[1]), (h, w)).reshape(n, -1)
    gram = torch.einsum("npa,npb->ab", design, design) / n + cfg.reg_filter * torch.eye(design.shape[2])
    rhs = torch.einsum("npa,np->a", design, labels) / n
    expected = torch.linalg.solve(gram, rhs)

    got = sm.filter.double().reshape(-1)
    assert torch.linalg.norm(got - expected) < 1e-3 * torch.linalg.norm(expected)
    # The response is that same linear map applied to a sample, on the feature grid.
    assert torch.allclose(sm.response(feats[:1]).double().reshape(-1), design[0] @ expected, atol=1e-4)


def test_joint_gauss_newton_descends_to_a_stationary_point(davis_root):
    feats, centres, size, _ = first_frame_samples(davis_root, count=6)
    objectives, grads = [], []
    for iters in (0, 1, 2, 4, 8, 16):
        cfg = DCFConfig(proj_dim=8, init_gn_iters=max(iters, 1), init_cg_iters=20)
        cfg.init_gn_iters = iters  # 0: where the descent starts, a fit no setting may ask for
        sm = SpatialMemory(cfg, feats.shape[1])
        sm.initialize(feats, centres, size)
        filt = sm.filter.double().requires_grad_()
        proj = sm.projection.double().requires_grad_()
        loss = reference_objective(sm, feats, centres, size, filt, proj)
        grad = torch.autograd.grad(loss, (filt, proj))
        objectives.append(loss.item())
        grads.append(float(torch.sqrt(sum(g.square().sum() for g in grad))))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(objectives, objectives[1:])), objectives
    assert objectives[-1] < 0.5 * objectives[0]
    assert grads[-1] < 0.02 * grads[0], grads


@pytest.mark.parametrize("name", ["car-roundabout", "blackswan"])
def test_trained_on_frame0_finds_the_target_in_frame5(davis_root, name):
    feats, centres, size, window0 = first_frame_samples(davis_root, name)
    sm = SpatialMemory(DCFConfig(), feats.shape[1])
    sm.initialize(feats, centres, size)
    cx, cy, _ = sm.locate(sm.response(feats[:1]))
    assert math.hypot(cx - centres[0, 0], cy - centres[0, 1]) < 0.5  # even kernel, no offset

    # Search frame 5 in crops deliberately off the target, so a filter that just
    # favours the crop centre would fail.
    x, y, w, h = read_boxes(davis_root, name)[5]
    frame = read_image(davis_root / "JPEGImages" / "480p" / name / "00005.jpg")
    for sign in (1, -1):
        offset = sign * 3 * STRIDE / window0.scale
        window = CropWindow(x + (w - 1) / 2 + offset, y + (h - 1) / 2 - 0.6 * offset, window0.side, CROP)
        response = sm.response(cell_features(crop_image(frame, window)))
        cx, cy, peak = sm.locate(response)
        tx, ty = (pixel_to_cell(v) for v in window.to_crop(x + (w - 1) / 2, y + (h - 1) / 2))
        assert math.hypot(tx - (CROP // STRIDE - 1) / 2, ty - (CROP // STRIDE - 1) / 2) > 3
        assert math.hypot(cx - tx, cy - ty) < 1.5, ((cx, cy), (tx, ty))
        assert peak == pytest.approx(float(response.max()))
        assert peak > 0.2


@pytest.mark.parametrize("k", [3, 4, 5])
def test_folded_tap_sum_is_the_padded_sum_bit_for_bit(k):
    """The per-frame response's fold and the refit's padded sum add the same numbers in the
    same order: one tracker, one set of numbers, whichever computed a response."""
    g = torch.Generator().manual_seed(k)
    for n, (h, w) in ((1, (16, 16)), (7, (17, 23))):
        taps = torch.randn(n, k * k, h * w, generator=g)
        assert torch.equal(correlate_taps_folded(taps, h, w), correlate_taps(taps, h, w))


@pytest.mark.parametrize("k", [1, 3, 4, 5])
def test_filter_adjoint_is_the_transpose_of_apply_filter(k):
    """<g, f> = <u, f * z> for every filter f, samples z and maps u: the refit's J^T, with
    the zero padding of an even kernel on the same sides as the filter's."""
    g = torch.Generator().manual_seed(k)
    samples = torch.randn(2, 3, 5, 7, 6, generator=g, dtype=torch.float64)
    maps = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    adjoint = filter_adjoint(samples, maps, k)
    assert adjoint.shape == (2, 5, k, k)
    for _ in range(3):
        filters = torch.randn(2, 5, k, k, generator=g, dtype=torch.float64)
        forward = (maps * apply_filter(samples, filters)).flatten(1).sum(1)
        torch.testing.assert_close((adjoint * filters).flatten(1).sum(1), forward, rtol=1e-12, atol=1e-12)


def test_refit_is_the_gauss_newton_step_on_real_samples(davis_root):
    """The written-out refit takes the step that autograd's Gauss-Newton takes on the same
    objective (real first-frame samples of two videos, unequal weights, a filter that is not
    yet the minimum), one problem per row. In float64: five CG iterations on this problem
    amplify float32 rounding to ~1e-4 either way, which would hide a wrong step."""
    cfg = DCFConfig(proj_dim=8)
    rows = []
    for name in ("car-roundabout", "blackswan"):
        feats, centres, size, _ = first_frame_samples(davis_root, name, count=6)
        sm = SpatialMemory(cfg, feats.shape[1])
        sm.initialize(feats, centres, size)
        for i in range(3):
            sm.add_sample(feats[i:i + 1], tuple((centres[i] + 0.5).tolist()), size)
        rows.append(sm)
    n = rows[0].num_samples
    samples = torch.stack([sm._samples[:n] for sm in rows]).double()
    labels = torch.stack([sm._labels[:n] for sm in rows]).double()
    weights = torch.stack([sm.weights for sm in rows]).double()
    start = torch.stack([0.5 * sm.filter for sm in rows]).double()
    fitted = refit_filters(samples, labels, weights, start, cfg.reg_filter, cfg.update_cg_iters)
    for row in range(2):
        sqrt_w = weights[row].sqrt()[:, None, None]

        def residual(f):
            data = (apply_filter(samples[row], f) - labels[row]) * sqrt_w
            return torch.cat([data.flatten(), math.sqrt(cfg.reg_filter) * f.flatten()])

        (expected,) = gauss_newton_step(residual, (start[row],), cfg.update_cg_iters)
        assert not torch.allclose(expected, start[row])
        torch.testing.assert_close(fitted[row], expected, rtol=1e-9, atol=1e-12)


def test_locate_refines_to_sub_cell_peak():
    cols = torch.arange(12.0)
    response = torch.exp(-((cols[None] - 6.3) ** 2 + (cols[:, None] - 4.8) ** 2) / 8)
    x, y, peak = SpatialMemory.locate(response)
    assert abs(x - 6.3) < 0.1 and abs(y - 4.8) < 0.1
    assert peak == pytest.approx(float(response.max()))


@pytest.mark.parametrize("learning_rate", [0.05, 0.2])
def test_sample_memory_bookkeeping(learning_rate):
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(3, 5, 8, 8, generator=gen)
    cfg = DCFConfig(proj_dim=4, memory_size=12, learning_rate=learning_rate, update_interval=3,
                    init_gn_iters=1, init_cg_iters=5)
    sm = SpatialMemory(cfg, 5)
    sm.initialize(feats, torch.full((3, 2), 3.5), (2.0, 2.0))
    assert torch.allclose(sm.weights, torch.full((3,), 1 / 3))
    proj = sm.projection.clone()
    updated, floored = [], []
    for t in range(20):
        before = sm.filter.clone()
        sm.add_sample(torch.randn(1, 5, 8, 8, generator=gen), (3.0 + t % 3, 4.0), (2.0, 2.5))
        weights = sm.weights
        if t == 0:
            assert float(weights[3]) == pytest.approx(learning_rate)
        assert sm.num_samples == min(3 + t + 1, cfg.memory_size)
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-5)
        assert float(weights[:3].sum()) >= INIT_WEIGHT_FLOOR - 1e-6
        floored.append(float(weights[:3].sum()) == pytest.approx(INIT_WEIGHT_FLOOR))
        # Later-frame samples sit one decay factor apart: a full memory evicts the
        # oldest sample, never a recent one.
        later = weights[3:].sort(descending=True).values
        assert torch.allclose(later[1:] / later[:-1], torch.full_like(later[1:], 1 - learning_rate))
        did = sm.step()
        updated.append(did)
        assert did == (not torch.equal(before, sm.filter))
    assert any(floored) == (learning_rate > 0.1)
    assert updated == [(t + 1) % 3 == 0 for t in range(20)]
    assert torch.equal(proj, sm.projection)  # P stays frozen after the first frame


def test_rejects_bad_input():
    sm = SpatialMemory(DCFConfig(proj_dim=4), 5)
    with pytest.raises(RuntimeError):
        sm.response(torch.zeros(1, 5, 4, 4))
    with pytest.raises(ValueError, match="feats"):
        sm.initialize(torch.zeros(2, 6, 4, 4), torch.zeros(2, 2), (1.0, 1.0))
    with pytest.raises(ValueError, match="target_size"):
        sm.initialize(torch.zeros(2, 5, 4, 4), torch.zeros(2, 2), (0.0, 1.0))
    with pytest.raises(ValueError, match="crop"):
        augment_first_frame(np.zeros((8, 8), np.uint8), (3.0, 3.0), np.random.default_rng(0))


def test_augmented_centres_follow_the_target(davis_root):
    box = read_boxes(davis_root, "blackswan")[0]
    window = window_around(box, 4.0, 128)
    crop = crop_image(read_image(davis_root / "JPEGImages" / "480p" / "blackswan" / "00000.jpg"), window)
    centre = (70.0, 55.0)
    marker = np.array([255, 0, 255], np.uint8)
    crop[50:61, 65:76] = marker  # an 11x11 patch nothing in the image looks like
    crops, centres = augment_first_frame(crop, centre, np.random.default_rng(0), count=40)
    assert len(crops) == len(centres) == 40
    assert np.array_equal(crops[0], crop) and centres[0] == centre
    assert centres[1] == (127 - 70.0, 55.0)
    assert np.array_equal(crops[1], crop[:, ::-1])
    for image, (u, v) in zip(crops, centres):
        assert image.shape == crop.shape and image.dtype == np.uint8
        pixel = image[int(round(v)), int(round(u))].astype(int)
        assert np.abs(pixel - marker).max() < 40, (u, v, pixel)
    assert len({(round(u), round(v)) for u, v in centres}) > 10  # shifts and rotations move it


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(5, 16, 10, 10, generator=gen).relu()
    centres = torch.full((5, 2), 4.5)
    results = []
    for device in ("cpu", "cuda"):
        sm = SpatialMemory(DCFConfig(proj_dim=8), 16)
        sm.initialize(feats.to(device), centres.to(device), (3.0, 3.0))
        results.append(sm.response(feats[:1].to(device)).cpu())
    assert torch.allclose(results[0], results[1], atol=1e-3)


def test_batched_responses_equal_each_memory_alone(davis_root):
    """A lockstep step scores every target's DCF in one product: each row must be what
    that memory gives alone, and the peak values row by row those of the single maps."""
    memories, rows = [], []
    for name in ("car-roundabout", "blackswan"):
        feats, centres, size, _ = first_frame_samples(davis_root, name, count=6)
        sm = SpatialMemory(DCFConfig(), feats.shape[1])
        sm.initialize(feats, centres, size)
        memories.append(sm)
        rows.append(feats[1:2])
    together = SpatialMemory.responses(memories, torch.cat(rows))
    for i, (sm, feat) in enumerate(zip(memories, rows)):
        alone = sm.response(feat)
        torch.testing.assert_close(together[i], alone, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(SpatialMemory.peak_values(together)[i], SpatialMemory.peak_values(alone))
    with pytest.raises(ValueError, match="memories"):
        SpatialMemory.responses(memories, rows[0])


def test_memories_fitted_together_equal_each_fitted_alone(davis_root):
    """Targets started together fit their DCFs (P and f jointly) in one batched
    Gauss-Newton solve: each memory must hold what fitting it alone gives, bit for bit on a
    CPU (each memory's products are the same matrix products as alone)."""
    cfg = DCFConfig(init_gn_iters=3, init_cg_iters=6)
    problems = [first_frame_samples(davis_root, name, count=8) for name in ("car-roundabout", "blackswan", "bmx-trees")]
    alone = []
    for feats, cells, size, _ in problems:
        sm = SpatialMemory(cfg, feats.shape[1])
        sm.initialize(feats, cells, size)
        alone.append(sm)
    together = [SpatialMemory(cfg, problems[0][0].shape[1]) for _ in problems]
    feats, cells = (torch.stack([problem[i] for problem in problems]) for i in (0, 1))
    SpatialMemory.initialize_all(together, feats, cells, [problem[2] for problem in problems])
    for a, b in zip(alone, together):
        assert b.num_samples == a.num_samples == 8
        for name in ("filter", "projection", "weights", "_samples", "_labels"):
            assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.allclose(together[0].filter, together[1].filter)  # three problems, three fits
    with pytest.raises(ValueError, match="2 memories"):
        SpatialMemory.initialize_all(together[:2], feats, cells, [problem[2] for problem in problems])


def test_samples_added_together_equal_each_added_alone(davis_root):
    """A lockstep step adds its targets' DCF samples with one projection and one set of
    labels: each memory must hold what adding its sample alone gives (the same slots,
    weights, projected samples and labels), and so refit to the same filter."""
    cfg = DCFConfig(update_interval=1)
    held = {}
    for together in (False, True):
        memories, rows, centres, sizes = [], [], [], []
        for name, count in (("car-roundabout", 6), ("blackswan", 5), ("bmx-trees", 6)):
            feats, cells, size, _ = first_frame_samples(davis_root, name, count=count)
            sm = SpatialMemory(cfg, feats.shape[1])
            sm.initialize(feats[:4], cells[:4], size)
            memories.append(sm)
            rows.append(feats[4:5])
            centres.append(tuple(cells[4].tolist()))
            sizes.append(tuple(float(v) * 1.1 for v in size))
        if together:
            SpatialMemory.add_samples(memories, torch.cat(rows), centres, sizes)
        else:
            for sm, row, centre, size in zip(memories, rows, centres, sizes):
                sm.add_sample(row, centre, size)
        SpatialMemory.step_all(memories)
        held[together] = [(sm.num_samples, sm.weights, sm._samples, sm._labels, sm.filter) for sm in memories]
    for alone, batched in zip(held[False], held[True]):
        assert alone[0] == batched[0] == 5
        for a, b in zip(alone[1:], batched[1:]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="3 memories, 2 centres"):
        SpatialMemory.add_samples(memories, torch.cat(rows), centres[:2], sizes)
    with pytest.raises(ValueError, match="feat must be"):
        SpatialMemory.add_samples(memories, torch.cat(rows[:2]), centres, sizes)


def memories_with_counts(davis_root, cfg: DCFConfig, extras=(("car-roundabout", 1), ("blackswan", 4), ("bmx-trees", 0))):
    """Memories of the first-frame samples of DAVIS sequences, each with ``extra`` tracked
    samples more (different sample counts)."""
    memories = []
    for name, extra in extras:
        feats, centres, size, _ = first_frame_samples(davis_root, name, count=6)
        sm = SpatialMemory(cfg, feats.shape[1])
        sm.initialize(feats, centres, size)
        for i in range(extra):  # different sample counts
            sm.add_sample(feats[i + 1:i + 2], tuple(centres[i + 1].tolist()), size)
        memories.append(sm)
    return memories


def test_refits_due_together_match_each_refit_alone(davis_root):
    """Lockstep targets whose refit falls due on the same frame are refined by one batched
    solve (samples padded with zero weight to the largest count); each filter must come
    out as its own refit would make it, and a memory not yet due is left alone."""
    cfg = DCFConfig(update_interval=2)
    fitted = {}
    for together in (False, True):
        memories = memories_with_counts(davis_root, cfg)
        assert SpatialMemory.step_all(memories[:2]) == []  # the third is a step behind
        if together:
            due = SpatialMemory.step_all(memories)
        else:
            due = [sm for sm in memories if sm.step()]
        assert due == memories[:2]
        fitted[together] = [sm.filter for sm in memories]
    for alone, batched in zip(fitted[False], fitted[True]):
        torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-6)
    assert not torch.equal(fitted[True][0], fitted[True][1])


@pytest.mark.parametrize("targets", [1, 3])
def test_a_refit_over_every_slot_matches_the_plain_refit(davis_root, targets):
    """With a fixed-shape runner (a CUDA graph on a GPU) the refit gets every sample slot,
    unused ones weighing 0, and a batch padded by rows (3 -> 4); the filters must be those
    of the plain refit over the stored samples."""
    cfg = DCFConfig(update_interval=1, memory_size=40)
    runner = BatchBuckets(refit_pass, lambda fn, example, options: lambda *a: fn(*a, **options))
    fitted = {}
    for solve in (None, runner):
        memories = memories_with_counts(davis_root, cfg)[:targets]
        assert SpatialMemory.step_all(memories, solve) == memories
        fitted[solve is None] = [sm.filter for sm in memories]
    assert len(runner.runners) == 1 and next(iter(runner.runners))[0][0][0][:2] == (1 if targets == 1 else 4, 40)
    for plain, whole in zip(fitted[True], fitted[False]):
        torch.testing.assert_close(whole, plain, rtol=1e-4, atol=1e-6)


def test_the_refit_reads_nothing_back_to_the_host(davis_root):
    """What CUDA graph capture forbids, checked on a CPU: the refit (CG and line search)
    reads no value back to the host and makes no tensor from host numbers."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = []

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func._opname)
            return func(*args, **(kwargs or {}))

    cfg = DCFConfig(update_interval=1)
    memories = memories_with_counts(davis_root, cfg, (("blackswan", 2),))
    def watched(*args, **options):  # the solve, which a graph captures; not the making of its inputs
        with Watch():
            return refit_pass(*args, **options)

    SpatialMemory.step_all(memories, watched)
    assert {"bmm", "amax", "where"} <= set(seen)  # the watch saw the refit
    assert not {"_local_scalar_dense", "nonzero", "masked_select", "lift_fresh", "lift_fresh_copy"} & set(seen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_refit_replayed_from_a_cuda_graph_matches_the_eager_refit(davis_root):
    cfg = DCFConfig(update_interval=1)
    fitted = {}
    for graphed in (False, True):
        memories = memories_with_counts(davis_root, cfg)
        for sm in memories:
            for name in ("_proj", "_filter", "_scorer", "_samples", "_labels"):
                setattr(sm, name, getattr(sm, name).cuda())
        runner = BatchBuckets(refit_pass) if graphed else None
        SpatialMemory.step_all(memories, runner)
        SpatialMemory.step_all(memories, runner)  # a second replay of the same graph
        fitted[graphed] = [sm.filter.cpu() for sm in memories]
    for eager, replayed in zip(fitted[False], fitted[True]):
        torch.testing.assert_close(replayed, eager, rtol=1e-4, atol=1e-6)


def test_a_refit_uses_the_memorys_own_sample_weights():
    """The refit weighs each stored sample by its memory weight (learning_rate's decay, the
    first-frame floor), not uniformly: otherwise those settings would not reach the filter."""
    gen = torch.Generator().manual_seed(1)
    cfg = DCFConfig(proj_dim=4, memory_size=12, learning_rate=0.2, update_interval=1,
                    init_gn_iters=1, init_cg_iters=5)
    sm = SpatialMemory(cfg, 5)
    sm.initialize(torch.randn(3, 5, 8, 8, generator=gen), torch.full((3, 2), 3.5), (2.0, 2.0))
    for t in range(4):
        sm.add_sample(torch.randn(1, 5, 8, 8, generator=gen), (3.0 + t, 4.0), (2.0, 2.5))
    before, n = sm.filter.clone(), sm.num_samples
    samples, labels = sm._samples[None, :n], sm._labels[None, :n]
    expected = refit_filters(samples, labels, sm.weights[None], before[None], cfg.reg_filter, cfg.update_cg_iters)[0]
    uniform = refit_filters(samples, labels, torch.full((1, n), 1 / n), before[None], cfg.reg_filter,
                            cfg.update_cg_iters)[0]
    assert not torch.allclose(expected, uniform)  # the weights matter on this problem
    assert sm.step()
    torch.testing.assert_close(sm.filter, expected)


def test_a_full_memory_never_evicts_a_first_frame_sample():
    """Once the floor holds the first-frame samples at 0.25 of the weight, each can weigh
    less than the one later sample; eviction must still pick among later samples only:
    the first frame is the only verified appearance of the target."""
    gen = torch.Generator().manual_seed(3)
    cfg = DCFConfig(proj_dim=4, memory_size=4, learning_rate=0.2, update_interval=100,
                    init_gn_iters=1, init_cg_iters=5)
    sm = SpatialMemory(cfg, 5)
    sm.initialize(torch.randn(3, 5, 8, 8, generator=gen), torch.full((3, 2), 3.5), (2.0, 2.0))
    first, first_labels = sm._samples[:3].clone(), sm._labels[:3].clone()
    for t in range(10):
        feat = torch.randn(1, 5, 8, 8, generator=gen)
        sm.add_sample(feat, (3.0 + t % 3, 4.0), (2.0, 2.5))
        assert sm.num_samples == 4
        assert torch.equal(sm._samples[3], project(feat, sm.projection)[0])  # the newest sample is kept
    assert float(sm.weights[:3].max()) < float(sm.weights[3])  # the case where a plain argmin picks slot 0-2
    assert torch.equal(sm._samples[:3], first) and torch.equal(sm._labels[:3], first_labels)


def test_a_first_frame_fit_needs_room_for_a_tracked_sample():
    """As many first-frame samples as memory slots would leave no later sample to evict when
    the first tracked frame arrives: refused when the memory is built."""
    cfg = DCFConfig(proj_dim=4, memory_size=4, init_gn_iters=1, init_cg_iters=2)
    feats = torch.randn(4, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="memory_size - 1 = 3"):
        SpatialMemory(cfg, 5).initialize(feats, torch.full((4, 2), 3.5), (2.0, 2.0))
    SpatialMemory(cfg, 5).initialize(feats[:3], torch.full((3, 2), 3.5), (2.0, 2.0))


def test_a_peak_on_the_left_border_is_not_refined_across_rows():
    """A peak in column 0 has no left neighbour; the flat index's left cell is the previous
    row's last one, which must not shift the peak (here it would by ~0.4 cells)."""
    response = torch.zeros(5, 6)
    response[2, 0], response[2, 1], response[1, 5] = 1.0, 0.6, 0.9
    x, y, peak = SpatialMemory.locate(response)
    assert (x, y, peak) == (0.0, 2.0, 1.0)
    response = response.flip(1)  # the right border: the next row's first cell, likewise
    response[3, 0] = 0.9
    assert SpatialMemory.locate(response) == (5.0, 2.0, 1.0)


def test_label_width_is_floored_for_tiny_targets():
    """A target under a cell wide gets labels of MIN_LABEL_SIGMA cells, not narrower ones
    that would vanish between cells."""
    cfg = DCFConfig()
    assert cfg.sigma_factor * 0.5 < MIN_LABEL_SIGMA
    assert label_sigma(cfg, (0.5, 0.5)) == MIN_LABEL_SIGMA
    assert label_sigma(cfg, (40.0, 10.0)) == pytest.approx(cfg.sigma_factor * 20.0)


def test_augmentation_refuses_a_centre_below_a_wide_crop():
    """The centre's y is checked against the crop's height, not its width."""
    crop = np.zeros((8, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="outside the 16x8 crop"):
        augment_first_frame(crop, (3.0, 10.0), np.random.default_rng(0), count=2)
    images, centres = augment_first_frame(crop, (10.0, 7.0), np.random.default_rng(0), count=2)
    assert centres == [(10.0, 7.0), (5.0, 7.0)]
