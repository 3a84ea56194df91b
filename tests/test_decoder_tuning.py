"""First-frame tuning of the decoder: it learns the first frame, leaves the shared decoder
alone, and each target tracks with its own weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samn_tracker import decoder_tuning, regions
from samn_tracker.config import TuningConfig, preset
from samn_tracker.crops import crop_mask, window_around
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker import tracker as tracker_module
from samn_tracker.decoder_tuning import TuningViews, tune_decoder, tune_decoders, tune_stacked
from samn_tracker.model.decoder import Decoder
from samn_tracker.model.encoders import QueryFeatures
from samn_tracker.model.network import STACKS_KEPT
from samn_tracker.tracker import SAMNTracker
from samn_tracker.train.losses import segmentation_loss

SMALL = preset("lite").replace(crop_size=128)


def test_tuning_fits_its_views_on_a_copy_and_repeats_for_a_seed() -> None:
    torch.manual_seed(0)
    decoder = Decoder(in_dim=16, skip8_dim=8, skip4_dim=8, dim=8)
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    masks = torch.zeros(6, 1, 32, 32)
    masks[:, :, 8:24, 10:20] = 1.0
    views = TuningViews(torch.randn(6, 16, 2, 2), torch.rand(6, 1, 2, 2), torch.randn(6, 8, 4, 4),
                        torch.randn(6, 8, 8, 8), masks)

    @torch.no_grad()
    def loss(weights=None) -> float:
        args = (views.readout, views.spatial_map, views.s8, views.s4, 32)
        logits = decoder(*args) if weights is None else torch.func.functional_call(decoder, weights, args)
        return float(segmentation_loss(logits, views.masks))

    cfg = TuningConfig(steps=30, lr=1e-2, batch=3)
    tuned = tune_decoder(decoder, views, cfg, torch.Generator().manual_seed(0))
    assert loss(tuned) < 0.5 * loss()
    assert all(torch.equal(v, before[k]) for k, v in decoder.state_dict().items())
    again = tune_decoder(decoder, views, cfg, torch.Generator().manual_seed(0))
    assert all(torch.equal(tuned[k], again[k]) for k in tuned)


def small_views(seed: int, count: int = 6, device: str = "cpu") -> TuningViews:
    """Random inputs of a small decoder, and a rectangle to learn that differs by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(count, 1, 32, 32)
    masks[:, :, 2 + 4 * seed:18 + 4 * seed, 6:14 + 4 * seed] = 1.0
    inputs = (torch.randn(count, 16, 2, 2, generator=g), torch.rand(count, 1, 2, 2, generator=g),
              torch.randn(count, 8, 4, 4, generator=g), torch.randn(count, 8, 8, 8, generator=g), masks)
    return TuningViews(*(tensor.to(device) for tensor in inputs))


@torch.no_grad()
def drawn(decoder: Decoder, weights: dict, views: TuningViews) -> torch.Tensor:
    """The masks a decoder with ``weights`` draws on the tuning ``views``."""
    args = (views.readout, views.spatial_map, views.s8, views.s4, views.masks.shape[-1])
    return torch.func.functional_call(decoder, weights, args).argmax(1).bool()


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two sets of masks."""
    return float((a & b).sum() / (a | b).sum())


def test_targets_tuned_together_draw_the_masks_each_draws_tuned_alone() -> None:
    """A GPU tunes a lockstep batch's targets together (their weights stacked, one pass a
    step); each target's decoder draws the masks its tuning alone gives, though the targets
    learn different masks (Adam turns float rounding into small differences of weights). A
    CPU tunes them one after another."""
    torch.manual_seed(0)
    decoder = Decoder(in_dim=16, skip8_dim=8, skip4_dim=8, dim=8)
    views = [small_views(seed) for seed in range(3)]
    cfg = TuningConfig(steps=30, lr=1e-2, batch=3)
    alone = [tune_decoder(decoder, v, cfg, torch.Generator().manual_seed(0)) for v in views]
    together = tune_stacked(decoder, views, cfg, torch.Generator().manual_seed(0))
    trained = dict(decoder.named_parameters())
    for v, own, stacked in zip(views, alone, together):
        assert max((own[k] - trained[k]).abs().max() for k in own) > 0.1  # the tuning moved them
        assert agreement(*(drawn(decoder, w, v) for w in (own, stacked))) > 0.99
    assert max((alone[0][k] - alone[1][k]).abs().max() for k in trained) > 0.1  # each learned its own

    on_cpu = tune_decoders(decoder, views, cfg, seed=0)
    assert all(torch.equal(own[k], kept[k]) for own, kept in zip(alone, on_cpu) for k in own)
    with pytest.raises(ValueError, match="as many views"):
        tune_stacked(decoder, [views[0], small_views(1, count=5)], cfg, torch.Generator().manual_seed(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_targets_tuned_together_on_a_gpu_segment_as_each_alone() -> None:
    """``tune_decoders`` on CUDA takes the stacked pass; its decoders draw each target's
    masks as that target's tuning alone does (TF32 convolutions round differently)."""
    torch.manual_seed(0)
    decoder = Decoder(in_dim=16, skip8_dim=8, skip4_dim=8, dim=8).cuda()
    views = [small_views(seed, device="cuda") for seed in range(4)]
    cfg = TuningConfig(steps=30, lr=1e-2, batch=3)
    together = tune_decoders(decoder, views, cfg, seed=0)
    for v, stacked in zip(views, together):
        own = tune_decoder(decoder, v, cfg, torch.Generator().manual_seed(0))
        assert agreement(*(drawn(decoder, w, v) for w in (own, stacked))) > 0.99


def flushes_subnormals() -> bool:
    return bool(torch.tensor(torch.finfo(torch.float32).tiny) / 2 == 0)


@pytest.mark.parametrize("flushing", [False, True])
def test_tuning_leaves_the_callers_subnormal_mode_as_it_found_it(flushing) -> None:
    """Tuning flushes subnormals while it runs (they slow its backward); whoever embeds the
    tracker keeps the floating-point mode they had, either way."""
    torch.manual_seed(0)
    decoder = Decoder(in_dim=16, skip8_dim=8, skip4_dim=8, dim=8)
    views = TuningViews(torch.randn(4, 16, 2, 2), torch.rand(4, 1, 2, 2), torch.randn(4, 8, 4, 4),
                        torch.randn(4, 8, 8, 8), (torch.rand(4, 1, 32, 32) > 0.5).float())
    if not torch.set_flush_denormal(flushing):
        pytest.skip("this CPU has no flush-to-zero mode")
    try:
        tune_decoder(decoder, views, TuningConfig(steps=2, batch=2), torch.Generator().manual_seed(0))
        assert flushes_subnormals() is flushing
    finally:
        torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def car(davis_root):
    sequence = davis_sequence(davis_root, "car-shadow")
    return [sequence.image(i) for i in range(5)], sequence.groundtruth


def test_each_target_tracks_with_its_own_tuned_decoder(car) -> None:
    """Tuned weights differ from the trained ones and change the masks; the shared decoder
    is the same after tracking; ``steps=0`` is the trained decoder for every target."""
    frames, truth = car
    tracker = SAMNTracker(SMALL.replace(**{"tuning.steps": 10, "probability_maps": True}), device="cpu")
    shared = {k: v.clone() for k, v in tracker.net.decoder.state_dict().items()}
    tracker.initialize(frames[0], truth[0])
    tuned = [tracker.track(f).probability for f in frames[1:]]
    own = tracker._target.decoder
    assert own is not None and any(not torch.equal(own[k], shared[k]) for k in shared)
    assert all(torch.equal(v, shared[k]) for k, v in tracker.net.decoder.state_dict().items())

    plain = SAMNTracker(SMALL.replace(**{"tuning.steps": 0, "probability_maps": True}), device="cpu")
    plain.initialize(frames[0], truth[0])
    assert plain._target.decoder is None
    untuned = [plain.track(f).probability for f in frames[1:]]
    assert any(np.abs(a - b).max() > 0.05 for a, b in zip(tuned, untuned))


def test_boxes_are_tuned_on_when_asked_and_refined(car) -> None:
    """A box gives no true mask: with ``from_box`` (``lite``'s default) its target is tuned on
    box-to-segmentation's mask, unless that failed (here: it must fill the whole box) and
    left a rectangle; without it the target keeps the trained decoder."""
    frames, truth = car
    ys, xs = np.nonzero(truth[0])
    box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    lite = preset("lite")  # the crop box-to-segmentation was trained at

    def decoder(**settings):
        tracker = SAMNTracker(lite.replace(**{"tuning.steps": 5, **settings}), device="cpu")
        tracker.initialize(frames[0], box)
        return tracker._target.decoder

    assert decoder() is not None
    assert decoder(**{"tuning.from_box": False}) is None
    assert decoder(**{"box_init_min_fill": 1.0}) is None


def test_a_batch_of_own_decoders_decodes_in_one_stacked_pass_as_row_by_row() -> None:
    """A GPU decodes a lockstep batch of tuned targets in one pass over their stacked weights
    (the shared decoder's for a row without its own); the logits are each row's own decoder's
    within float rounding, as a CPU computes them row by row."""
    torch.manual_seed(0)
    net = SAMNTracker(SMALL, device="cpu").net
    shared = dict(net.decoder.named_parameters())
    own = [{k: v.detach() + 0.05 * torch.randn_like(v) for k, v in shared.items()} for _ in range(2)]
    weights = [own[0], None, own[1]]
    dims = net.decoder
    readout = torch.randn(3, dims.conv_in.in_channels, 8, 8)
    spatial = torch.rand(3, 1, 8, 8)
    query = QueryFeatures(key=torch.randn(3, 4, 8, 8), value=torch.randn(3, 4, 8, 8), s16=torch.randn(3, 4, 8, 8),
                          s8=torch.randn(3, dims.refine8.skip[0].in_channels, 16, 16),
                          s4=torch.randn(3, dims.refine4.skip[0].in_channels, 32, 32))
    with torch.no_grad():
        row_by_row = net.decode_each(readout, query, spatial, 128, weights)
        stacked = net.decode_stacked(readout, query, spatial, 128, weights)
        alone = [net.decode(readout[i:i + 1], query.select(i), spatial[i:i + 1], 128, weights=w)
                 for i, w in enumerate(weights)]
    assert stacked.shape == (3, 2, 128, 128)
    torch.testing.assert_close(stacked, row_by_row, rtol=1e-4, atol=1e-4)
    assert all(torch.equal(row_by_row[i:i + 1], a) for i, a in enumerate(alone))
    assert (row_by_row[0] - row_by_row[2]).abs().max() > 1e-3  # the rows' own weights were used

    # The stacked weights are kept while the same rows come back, and made anew for other rows.
    swapped, fewer = [own[1], own[0], None], [None, own[1]]
    first_two = (readout[:2], query.rows([0, 1]), spatial[:2], 128)
    with torch.no_grad():
        assert torch.equal(net.decode_stacked(readout, query, spatial, 128, weights), stacked)
        torch.testing.assert_close(net.decode_stacked(readout, query, spatial, 128, swapped),
                                   net.decode_each(readout, query, spatial, 128, swapped), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(net.decode_stacked(*first_two, fewer), net.decode_each(*first_two, fewer),
                                   rtol=1e-4, atol=1e-4)
        assert torch.equal(net.decode_stacked(readout, query, spatial, 128, weights), stacked)  # groups take turns
    # A list in use stays kept while others come and go (the least recently used one leaves).
    kept = net._stacked_weights(weights)
    for i in range(STACKS_KEPT):
        net._stacked_weights([own[i % 2]] * (i + 1))
        assert net._stacked_weights(weights) is kept


def test_lite_targets_tuned_together_segment_their_views_as_each_alone(davis_root, monkeypatch) -> None:
    """The stacked tuning of two real ``lite`` starts (car-shadow and blackswan given by their
    masks) against the one after another that a CPU runs: Adam turns float rounding into
    weights up to a few thousandths apart (its steps on gradients near zero go either way),
    and the masks the two decoders draw on each target's tuning views agree to IoU 0.99."""
    frames, masks, views = [], [], []
    for name in ("car-shadow", "blackswan"):
        sequence = davis_sequence(davis_root, name)
        frames.append(sequence.image(0))
        masks.append(sequence.groundtruth[0])
    real_tuning = tracker_module.tune_decoders

    def kept(decoder, target_views, cfg, seed):
        views.extend(target_views)
        return real_tuning(decoder, target_views, cfg, seed)

    monkeypatch.setattr(tracker_module, "tune_decoders", kept)
    tracker = SAMNTracker(preset("lite").replace(**{"tuning.steps": 10}), device="cpu")
    started = tracker.start_all(frames, masks)
    together = tune_stacked(tracker.net.decoder, views, tracker.cfg.tuning, torch.Generator().manual_seed(0))
    for (target, _), v, stacked in zip(started, views, together):
        alone, both = (drawn(tracker.net.decoder, w, v) for w in (target.decoder, stacked))
        assert agreement(alone, both) > 0.99
        assert agreement(alone, v.masks[:, 0].bool()) > 0.8  # the decoders learned the target


def test_a_lockstep_tracks_with_stacked_tuned_decoders_as_with_each_tuned_alone(davis_root, monkeypatch) -> None:
    """The decoders a GPU tunes together are drop-in for tracking: two real videos tracked in
    lockstep from their masks, their starts tuned together (forced on this CPU) and one after
    another, give the same masks but for a few pixels, frame by frame."""
    videos = [davis_sequence(davis_root, name) for name in ("car-shadow", "blackswan")]
    frames = [[video.image(i) for i in range(5)] for video in videos]

    def tracked() -> list[np.ndarray]:
        tracker = SAMNTracker(preset("lite").replace(**{"tuning.steps": 10}), device="cpu")
        targets = [target for target, _ in tracker.start_all([f[0] for f in frames],
                                                             [video.groundtruth[0] for video in videos])]
        return [p.mask for i in range(1, 5) for p in tracker.step(targets, [f[i] for f in frames])]

    alone = tracked()
    monkeypatch.setattr(tracker_module, "tune_decoders", lambda decoder, views, cfg, seed: tune_stacked(
        decoder, views, cfg, torch.Generator().manual_seed(seed)))
    together = tracked()
    for a, b in zip(alone, together):
        assert a.sum() > 1000
        assert (a & b).sum() / (a | b).sum() > 0.99


def test_each_step_trains_on_batch_views_for_steps_steps(monkeypatch) -> None:
    """``steps`` Adam steps, each on the loss of ``batch`` of the views (not all of them, nor
    fewer steps): the cost and the fit that ``TuningConfig`` documents."""
    seen = []
    real_loss = decoder_tuning.segmentation_loss

    def counted(logits, masks):
        seen.append(len(masks))
        return real_loss(logits, masks)

    monkeypatch.setattr(decoder_tuning, "segmentation_loss", counted)
    torch.manual_seed(0)
    decoder = Decoder(in_dim=16, skip8_dim=8, skip4_dim=8, dim=8)
    tune_decoder(decoder, small_views(0, count=6), TuningConfig(steps=5, lr=1e-2, batch=2),
                 torch.Generator().manual_seed(0))
    assert seen == [2] * 5


def test_tuning_views_are_the_centred_crop_then_jittered_ones(car, monkeypatch) -> None:
    """View 0 is the crop placed exactly as the first frame's (``window_around``), the other
    ``views - 1`` are jittered by ``centre_jitter`` and ``scale_jitter``, in that order."""
    frames, truth = car
    calls, views = [], []
    real_jitter, real_tuning = tracker_module.jittered_window, tracker_module.tune_decoders

    def jitter(box, search_factor, crop_size, rng, centre_jitter, scale_jitter):
        calls.append((centre_jitter, scale_jitter))
        return real_jitter(box, search_factor, crop_size, rng, centre_jitter, scale_jitter)

    def kept(decoder, target_views, cfg, seed):
        views.extend(target_views)
        return real_tuning(decoder, target_views, cfg, seed)

    monkeypatch.setattr(tracker_module, "jittered_window", jitter)
    monkeypatch.setattr(tracker_module, "tune_decoders", kept)
    cfg = SMALL.replace(**{"tuning.steps": 1, "tuning.views": 4, "tuning.centre_jitter": 0.1,
                           "tuning.scale_jitter": 0.3, "tuning.flip": False})
    tracker = SAMNTracker(cfg, device="cpu")
    tracker.initialize(frames[0], truth[0])
    assert calls == [(0.1, 0.3)] * 3
    window = window_around(regions.solid_box(truth[0], cfg.initial_box_thin), cfg.search_factor, cfg.crop_size)
    centred = torch.from_numpy(crop_mask(truth[0], window) >= 0.5).float()
    assert len(views) == 1 and views[0].masks.shape[0] == 4
    assert torch.equal(views[0].masks[0, 0], centred)
    assert not any(torch.equal(views[0].masks[i, 0], centred) for i in range(1, 4))
