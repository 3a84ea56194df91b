"""The main components kept on the masks' device are OpenCV's (``regions.main_components``)."""
import functools

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from samn_tracker.device_components import keep_main_components
from samn_tracker.regions import main_components


def host_components(masks: torch.Tensor, fraction: float) -> np.ndarray:
    return np.stack([main_components(mask, fraction)[0] for mask in masks.numpy()])


def blotchy_masks(rng: np.random.Generator, count: int, shape: tuple[int, int]) -> torch.Tensor:
    """Blurred noise above a threshold: many components of all sizes, holes, corner contacts."""
    masks = []
    for _ in range(count):
        noise = rng.random(shape)
        blurred = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(0.7, 4)))
        masks.append(blurred > np.quantile(blurred, rng.uniform(0.4, 0.8)))
    return torch.from_numpy(np.stack(masks))


@pytest.mark.parametrize("fraction", [0.3, 0.05, 1.0])
def test_blotchy_masks_keep_the_components_opencv_keeps(fraction):
    rng = np.random.default_rng(1)
    masks = blotchy_masks(rng, 12, (61, 97))
    kept, done = keep_main_components(masks, fraction, rounds=64)
    assert done.all()
    assert np.array_equal(kept.numpy(), host_components(masks, fraction))
    assert (kept.sum() < masks.sum()) == (fraction > 0)  # something was dropped


def test_a_mask_still_changing_in_the_last_round_is_left_to_the_host():
    """A diagonal line has a label per pixel and no runs to carry one along: its largest
    label crosses a few pixels a round, too few to settle in the default rounds. Such a mask
    comes back as it was (the host labels it), beside a mask that settles; given the rounds
    it needs, the line keeps OpenCV's components too."""
    line = np.zeros((64, 64), bool)
    line[np.arange(60), np.arange(60)] = True
    line[5, 50] = True                      # a speck: dropped once the line is one component
    blob = np.zeros_like(line)
    blob[10:30, 10:30] = blob[40:42, 40:42] = True
    masks = torch.from_numpy(np.stack([line, blob]))
    kept, done = keep_main_components(masks, 0.3)
    assert done.tolist() == [False, True]
    assert torch.equal(kept[0], masks[0]) and np.array_equal(kept[1].numpy(), host_components(masks, 0.3)[1])
    kept, done = keep_main_components(masks, 0.3, rounds=60)
    assert done.all() and np.array_equal(kept.numpy(), host_components(masks, 0.3)) and not kept[0, 5, 50]


def test_real_masks_with_specks_settle_in_the_default_rounds(davis_root):
    """DAVIS annotations with stray blobs, as a tracked mask has them, in one batch of
    frame-sized masks (an empty one among them): each settles in the default rounds and
    keeps OpenCV's components."""
    rng = np.random.default_rng(2)
    masks = []
    for name in ("blackswan", "bmx-trees", "car-roundabout", "car-shadow", "cows"):
        files = sorted((davis_root / "Annotations" / "480p" / name).glob("*.png"))
        for path in files[::max(len(files) // 3, 1)][:3]:
            mask = np.array(Image.open(path)) > 0
            masks.append(mask | (cv2.GaussianBlur(rng.random(mask.shape), (0, 0), 3) > 0.6))
    masks.append(np.zeros_like(masks[0]))
    batch = torch.from_numpy(np.stack(masks))
    kept, done = keep_main_components(batch, 0.3)
    assert done.all()
    assert np.array_equal(kept.numpy(), host_components(batch, 0.3))
    assert (kept.flatten(1).sum(1) < batch.flatten(1).sum(1))[:-1].all()  # the blobs went


def test_pixels_touching_at_a_corner_are_one_component():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 1, 1] = mask[0, 2, 2] = mask[0, 3, 3] = True   # a diagonal line: one component of 3
    mask[0, 6, 6] = True                                  # a lone pixel, a third of its size
    kept, done = keep_main_components(mask, 0.34)
    assert done.all() and kept[0, 1:4, 1:4].diagonal().all() and not kept[0, 6, 6]
    kept, _ = keep_main_components(mask, 0.3)
    assert kept[0, 6, 6]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_gpu_keeps_the_components_a_cpu_keeps(davis_root):
    rng = np.random.default_rng(4)
    masks = [np.array(Image.open(path)) > 0
             for path in sorted((davis_root / "Annotations" / "480p" / "cows").glob("*.png"))[::10]]
    batch = torch.from_numpy(np.stack([m | (cv2.GaussianBlur(rng.random(m.shape), (0, 0), 3) > 0.6) for m in masks]))
    on_cpu = keep_main_components(batch, 0.3)
    on_gpu = keep_main_components(batch.cuda(), 0.3)
    assert all(torch.equal(a, b.cpu()) for a, b in zip(on_cpu, on_gpu))
    from samn_tracker.device_components import MainComponents
    graphed = MainComponents(0.3, graphed=True)
    block = batch[:, 20:400, 30:700]
    first = graphed(block.cuda(), (480, 854))
    again = graphed(block.flip(0).cuda(), (480, 854))  # a replay must not overwrite what came back
    assert len(graphed.graphs.runners) == 1
    expected = MainComponents(0.3)(block, (480, 854))
    assert all(torch.equal(a, b.cpu()) for a, b in zip(expected, first))
    assert all(torch.equal(a.flip(0), b.cpu()) for a, b in zip(expected, again))


def test_masks_padded_to_their_frame_keep_the_components_of_the_block():
    """How a GPU runs it from graphs: the blocks padded to the frame's size, the batch to a
    power of two (here with the options bound eagerly, as on a CPU): the same masks."""
    from samn_tracker.device_components import MainComponents

    masks = blotchy_masks(np.random.default_rng(5), 3, (50, 70))
    components = MainComponents(0.3, graphed=True, make=lambda fn, example, options: functools.partial(fn, **options))
    padded = components(masks, (64, 90))
    buckets = components.graphs
    assert [tuple(x.shape) for x in padded] == [(3, 50, 70), (3,)]
    assert list(buckets.runners) and all(key[0][0][0] == (4, 64, 90) for key in buckets.runners)
    assert all(torch.equal(a, b) for a, b in zip(padded, MainComponents(0.3)(masks, (64, 90))))


def test_a_block_is_labelled_on_a_canvas_of_its_own_size_not_its_frames():
    """A GPU's graphs hold their canvas: a block of a full-HD frame is padded to the next
    canvas side (64, 96, 128, 192, ...), and keeps the same components, settled or not,
    as on the block alone or on the whole frame."""
    from samn_tracker.device_components import MainComponents, canvas_side

    assert [canvas_side(n, 4000) for n in (1, 64, 65, 97, 129, 300, 700)] == [64, 64, 96, 128, 192, 384, 768]
    assert canvas_side(700, 480) == 480
    line = np.zeros((70, 100), bool)
    line[np.arange(60), np.arange(60)] = True   # does not settle in the default rounds
    masks = torch.cat([blotchy_masks(np.random.default_rng(6), 2, (70, 100)), torch.from_numpy(line)[None]])
    eager = functools.partial(MainComponents, 0.3, graphed=True,
                              make=lambda fn, example, options: functools.partial(fn, **options))
    on_canvas, on_frame = eager(), eager()
    kept = on_canvas(masks, (1080, 1920))
    assert [key[0][0][0] for key in on_canvas.graphs.runners] == [(4, 96, 128)]
    alone = MainComponents(0.3)(masks, (1080, 1920))
    whole = on_frame.graphs(torch.nn.functional.pad(masks, (0, 1920 - 100, 0, 1080 - 70)), min_fraction=0.3)
    assert kept[1].tolist() == [True, True, False]
    for result in (alone, (whole[0][:, :70, :100], whole[1])):
        assert all(torch.equal(a, b) for a, b in zip(kept, result))
