"""First-frame tuning of the decoder: it learns the first frame, leaves the shared decoder
alone, and each target tracks with its own weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samn_tracker.config import TuningConfig, preset
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.decoder_tuning import TuningViews, tune_decoder
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
