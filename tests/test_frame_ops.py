"""The device-resident crop / paste-back (``frame_ops="torch"``, the CUDA default) against
OpenCV's (the CPU default), on real frames, run here on the CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samn_tracker import build_tracker, regions
from samn_tracker.crops import CropWindow
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.batch_rows import grouped, in_order, take_rows
from samn_tracker.device_components import MainComponents
from samn_tracker.devices import ReadBack
from samn_tracker.frame_ops import DeviceFrames, HostFrames, frame_ops
from samn_tracker.front_pass import Front, front_pass
from tests.conftest import pixel_mean

CPU = torch.device("cpu")
WINDOWS = [
    CropWindow(400.0, 200.0, 100.0, 256),    # enlarges
    CropWindow(400.3, 199.7, 700.0, 256),    # shrinks
    CropWindow(20.0, 30.0, 300.0, 256),      # hangs over the top-left corner
    CropWindow(850.0, 470.0, 1000.0, 128),   # mostly outside, bottom-right
]


@pytest.fixture(scope="module")
def frame(davis_root):
    return davis_sequence(davis_root, "car-shadow").image(0)


@pytest.mark.parametrize("window", WINDOWS, ids=["enlarge", "shrink", "corner", "outside"])
def test_device_crops_equal_opencv_up_to_uint8_rounding(frame, window):
    host, device = HostFrames(CPU), DeviceFrames(CPU)
    ours = device.crop(device.load(frame), window)
    theirs = host.crop(host.load(frame), window)
    assert ours.shape == theirs.shape == (1, 3, window.out_size, window.out_size)
    difference = (ours - theirs).abs() * 255
    assert float(difference.max()) <= 0.51   # OpenCV rounds to uint8
    assert float(difference.mean()) < 0.3


def in_frames(pasted):
    """Every pasted map as its whole frame, and the extras read back with them."""
    builders, extras = pasted.wait_each()
    return [build().full() for build in builders], extras


@pytest.mark.parametrize("window", WINDOWS[:3], ids=["enlarge", "shrink", "corner"])
def test_device_paste_back_equals_opencv(window):
    smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(0)),
                                            9, 1, 4)[0]
    peak = torch.tensor([1.0, 2.0, 3.0])
    (ours,), (extra,) = in_frames(DeviceFrames(CPU).to_frames(smooth, [window], [(480, 854)], [peak]))
    (theirs,), _ = in_frames(HostFrames(CPU).to_frames(smooth, [window], [(480, 854)]))
    assert ours.shape == theirs.shape == (480, 854)
    assert np.abs(ours - theirs).max() < 1e-4
    assert (theirs > 0).sum() > 1000 and (theirs == 0).sum() > 1000  # the crop and outside it
    assert extra.tolist() == [1.0, 2.0, 3.0]


def test_a_batch_of_frames_is_cropped_and_pasted_back_as_each_frame_alone(frame):
    # A lockstep batch: two frame sizes interleaved, two windows per target (the `lite`
    # preset's segmentation and DCF crops). The front pass crops the frames of one size
    # with one grid_sample per crop index; a stand-in query encoder hands the crops back.
    small = np.ascontiguousarray(frame[:400, :700])
    images = [frame, small, frame[:, ::-1].copy(), small[::-1].copy()]
    windows = [[WINDOWS[i % 3], WINDOWS[(i + 1) % 3]] for i in range(4)]  # one crop size
    device = DeviceFrames(CPU)
    for members in ([0, 2], [1, 3]):
        shape = images[members[0]].shape[:2]
        axes = np.stack([device.crop_axes([windows[i][j] for i in members], shape) for j in (0, 1)], axis=1)
        outputs = front_pass(lambda crops: (crops,) * 5, device.upload([images[i] for i in members], CPU),
                             torch.from_numpy(axes), torch.zeros(2, 0), torch.zeros(2, 0), dcf=False, spatial="none")
        front = Front.of(outputs, dcf=False, spatial="none")
        for row, i in enumerate(members):
            seg, dcf = (device.crop(device.load(images[i]), w) for w in windows[i])
            assert torch.equal(front.seg_crops[row], seg[0]) and torch.equal(front.query.key[row], seg[0])
            assert torch.equal(front.dcf_features[row], dcf[0])
            host = HostFrames(CPU).crops([images[i]], [windows[i]])
            assert float((torch.stack([seg[0], dcf[0]]) - host).abs().max()) * 255 <= 0.51

    values = torch.nn.functional.avg_pool2d(torch.rand(4, 1, 256, 256, generator=torch.Generator().manual_seed(1)),
                                            9, 1, 4)[:, 0]
    seg = [pair[0] for pair in windows]
    shapes = [image.shape[:2] for image in images]
    pasted, (peaks,) = in_frames(device.to_frames(values, seg, shapes, [torch.arange(4.0)]))
    assert [p.shape for p in pasted] == [(480, 854), (400, 700)] * 2 and peaks.tolist() == [0, 1, 2, 3]
    for i in range(4):
        (one,), _ = in_frames(device.to_frames(values[i:i + 1], [seg[i]], [shapes[i]]))
        assert np.array_equal(pasted[i], one)
    (opencv,), _ = in_frames(HostFrames(CPU).to_frames(values[:1], seg[:1], shapes[:1]))
    assert np.abs(pasted[0] - opencv).max() < 1e-4
    # masks alone, with their counts, from both frame sizes in one read-back with the extras
    builders, (again,) = device.to_frames(values, seg, shapes, [torch.arange(4.0)], threshold=0.5,
                                          values=False).wait_each()
    assert again.tolist() == [0, 1, 2, 3]
    for build, whole in zip(builders, pasted):
        frame_map = build()
        assert np.array_equal(frame_map.above(0.5), whole > 0.5) and (whole > 0.5).any()
        assert np.array_equal(frame_map.counts_above(0.5).box, regions.mask_to_box(whole > 0.5))
        assert not frame_map.components_kept(0.5)
    # the masks' main components kept on the device, per frame size, with their counts
    builders, _ = device.to_frames(values, seg, shapes, threshold=0.5, values=False,
                                   components=MainComponents(0.3)).wait_each()
    for build, whole in zip(builders, pasted):
        frame_map = build()
        kept, counts = regions.main_components(whole > 0.5, 0.3)
        assert frame_map.components_kept(0.5) and not frame_map.components_kept(0.4)
        assert np.array_equal(frame_map.above(0.5), kept) and kept.sum() < (whole > 0.5).sum()
        assert np.array_equal(frame_map.counts_above(0.5).box, counts.box)


def test_only_the_rows_and_columns_a_crop_reaches_are_pasted_and_read_back(davis_root):
    """The device paste-back samples a block of rows and columns per crop and reads back its
    rows; the frames rebuilt from them must equal pasting into the whole frame, bit for bit:
    crops of different sizes in one batch (the block is the largest), over each edge of the
    frame, two that miss it (all zero), real DAVIS masks."""
    import torch.nn.functional as F

    from samn_tracker.frame_ops import sampling_grids

    import cv2

    masks = [cv2.resize((cv2.imread(str(davis_root / "Annotations" / "480p" / name / "00000.png"), 0) > 0)
                        .astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA)
             for name in ("blackswan", "car-shadow")]
    # soft edges, and non-zero up to the crop's border (a background probability too)
    values = F.avg_pool2d(torch.from_numpy(np.stack([m for m in masks for m in (m, 1 - m)] * 3)[:9])[:, None],
                          9, 1, 4)[:, 0] * 0.9 + 0.05
    windows = [CropWindow(400.0, 200.0, 100.0, 256), CropWindow(400.3, 199.7, 700.0, 256),
               CropWindow(20.0, 30.0, 300.0, 256), CropWindow(300.0, 470.0, 200.0, 256),
               CropWindow(500.0, -900.0, 300.0, 256), CropWindow(427.0, 240.0, 400.0, 256),
               CropWindow(10.0, 240.0, 150.0, 256), CropWindow(845.0, 250.0, 120.0, 256),
               CropWindow(-900.0, 240.0, 300.0, 256)]
    shape = (480, 854)
    pasted, _ = in_frames(DeviceFrames(CPU).to_frames(values, windows, [shape] * len(windows)))
    for window, value, ours in zip(windows, values, pasted):
        axes = [((np.arange(n, dtype=np.float32)[None] - np.float32(c)) * np.float32(window.scale) + 127.5)
                / 255 * 2 - 1 for c, n in ((window.cx, shape[1]), (window.cy, shape[0]))]
        whole = F.grid_sample(value[None, None], sampling_grids(*axes, CPU), mode="bilinear",
                              padding_mode="zeros", align_corners=True)[0, 0].numpy()
        assert ours.shape == shape and np.array_equal(ours, whole)
    missed = (4, 8)
    assert not any(pasted[i].any() for i in missed) and all(p.any() for i, p in enumerate(pasted) if i not in missed)
    rows = [np.flatnonzero(p.any(axis=1)) for p in pasted]
    columns = [np.flatnonzero(p.any(axis=0)) for p in pasted]
    assert 0 < rows[0][0] and rows[0][-1] < 479 and 0 < columns[0][0] and columns[0][-1] < 853  # inside
    assert rows[2][0] == 0 and rows[3][-1] == 479                     # over the top, over the bottom
    assert columns[6][0] == 0 and columns[7][-1] == 853               # over the left, over the right

    # What the tracker works on instead of a whole frame: each map's block. Its mask, the mean
    # over the mask and the mask's components and box must be those of the whole frame.
    builders, _ = DeviceFrames(CPU).to_frames(values, windows, [shape] * len(windows)).wait_each()
    maps = [build() for build in builders]
    assert all(m.shape == shape for m in maps)
    assert maps[0].block.shape[0] < shape[0] and maps[0].block.shape[1] < shape[1]
    for frame_map, whole in zip(maps, pasted):
        assert np.array_equal(frame_map.full(), whole)
        for threshold in (0.0, 0.5, 0.9):
            mask = frame_map.above(threshold)
            assert mask.dtype == bool and np.array_equal(mask, whole > threshold)
            if mask.any():
                assert frame_map.mean_where(mask) == float(whole[mask].mean())
            kept, counts = regions.main_components(mask, 0.2, within=frame_map.footprint)
            kept_whole, counts_whole = regions.main_components(mask, 0.2)
            assert np.array_equal(kept, kept_whole) and np.array_equal(counts.box, counts_whole.box)
            assert counts.centroid() == counts_whole.centroid() == pixel_mean(kept)
            assert np.array_equal(regions.mask_to_box(mask, within=frame_map.footprint), regions.mask_to_box(mask))
            assert frame_map.counts_above(threshold) is None  # none asked for

    # The masks made on the device, with their row and column counts: the same masks, boxes
    # and centroids as from the maps on the host; without the values, the masks alone.
    for threshold in (0.0, 0.5, 0.9):
        for keep_values in (True, False):
            builders, _ = DeviceFrames(CPU).to_frames(values, windows, [shape] * len(windows),
                                                      threshold=threshold, values=keep_values).wait_each()
            for build, whole in zip(builders, pasted):
                frame_map = build()
                mask = frame_map.above(threshold)
                assert mask.dtype == bool and np.array_equal(mask, whole > threshold)
                counts = frame_map.counts_above(threshold)
                assert frame_map.counts_above(0.25) is None
                assert np.array_equal(counts.box, regions.mask_to_box(mask))
                assert counts.centroid() == pixel_mean(mask)
                kept, kept_counts = regions.main_components(mask, 0.2, counts=counts)
                kept_whole, counts_whole = regions.main_components(mask, 0.2)
                assert np.array_equal(kept, kept_whole) and np.array_equal(kept_counts.box, counts_whole.box)
                assert kept_counts.centroid() == counts_whole.centroid()
                if keep_values:
                    assert np.array_equal(frame_map.full(), whole)
                else:
                    assert frame_map.block is None
                    with pytest.raises(ValueError, match="not read back"):
                        frame_map.full()


def test_read_back_gives_every_tensor_in_its_shape():
    a, b = torch.arange(6.0).view(2, 3), torch.tensor([7, 8], dtype=torch.int64)
    host_a, host_b = ReadBack(a, b).wait()
    assert host_a.shape == (2, 3) and host_a.tolist() == a.tolist()
    assert host_b.dtype == np.float32 and host_b.tolist() == [7.0, 8.0]
    assert ReadBack().wait() == []


def test_rows_are_taken_as_indexing_takes_them():
    t = torch.arange(12.0).view(4, 3)
    assert take_rows(t, [0, 1, 2, 3]) is t  # all of them, in order: no copy
    assert torch.equal(take_rows(t, [3, 1]), t[[3, 1]])
    assert torch.equal(take_rows(t, [3, 2, 1, 0]), t[[3, 2, 1, 0]])  # all of them, but reordered


def test_grouped_rows_are_put_back_in_index_order():
    """A lockstep batch's results computed per group (e.g. per frame shape) come back in
    target order, not group after group."""
    t = torch.arange(5.0)[:, None]
    groups = grouped("abacb")
    assert groups == [[0, 2], [1, 4], [3]]
    assert torch.equal(in_order([t[g] for g in groups], groups), t)
    assert in_order([t], [list(range(5))]) is t  # one group: as it is


def test_auto_puts_frames_on_the_device_only_for_a_gpu():
    assert isinstance(frame_ops("auto", CPU), HostFrames)
    assert isinstance(frame_ops("auto", torch.device("cuda")), DeviceFrames)
    assert isinstance(frame_ops("torch", CPU), DeviceFrames)
    assert isinstance(frame_ops("opencv", torch.device("cuda")), HostFrames)


def test_tracker_with_device_frame_ops_tracks_as_well_on_the_cpu(davis_root):
    sequence = davis_sequence(davis_root, "car-shadow")
    truth = sequence.groundtruth
    results = {}
    for ops in ("opencv", "torch"):
        # untuned: the two ops' crops differ by rounding, which first-frame tuning would
        # carry into two different decoders; this compares the frame ops alone
        tracker = build_tracker("lite", device="cpu", overrides=[f"frame_ops={ops}", "tuning.steps=0"])
        tracker.initialize(sequence.image(0), truth[0])
        outputs = [tracker.track(sequence.image(i)) for i in range(1, 15)]
        results[ops] = outputs, [(o.mask & truth[i]).sum() / (o.mask | truth[i]).sum()
                                 for i, o in enumerate(outputs, start=1)]
    (host, host_iou), (device, device_iou) = results["opencv"], results["torch"]
    first = (host[0].mask & device[0].mask).sum() / (host[0].mask | device[0].mask).sum()
    assert first > 0.98 and np.allclose(host[0].box, device[0].box, atol=2)
    assert np.mean(device_iou) > 0.8
    assert abs(np.mean(device_iou) - np.mean(host_iou)) < 0.03


def test_memories_read_at_the_graphs_fixed_sizes_track_as_at_their_own(davis_root):
    """On a GPU the device step reads every memory in slots of a few fixed sizes (``lite``:
    the 22 entries its cap allows), so that the read and decoder replay from CUDA graphs;
    the same step on a CPU, at those sizes and at each memory's own, tracks alike (given a
    box and not tuned, the targets share the decoder, which reads in that pass)."""
    sequence = davis_sequence(davis_root, "car-shadow")
    box = regions.mask_to_box(sequence.groundtruth[0])
    outputs, sizes = {}, {}
    for fixed in (False, True):
        tracker = build_tracker("lite", device="cpu", overrides=["frame_ops=torch", "tuning.from_box=false"])
        tracker.fixed_memory_sizes = fixed
        read, sizes[fixed] = tracker.net.mask_probability, set()

        def recorded(query, spatial, keys, *rest, read=read, seen=sizes[fixed]):
            seen.add(keys.shape[2])
            return read(query, spatial, keys, *rest)

        tracker.net.mask_probability = recorded
        tracker.initialize(sequence.image(0), box)
        outputs[fixed] = [tracker.track(sequence.image(i)) for i in range(1, 21)]
    positions = (256 // 16) ** 2
    assert sizes[True] == {22 * positions} and len(sizes[False]) > 1 and max(sizes[False]) < 22 * positions
    for own, fixed in zip(outputs[False], outputs[True]):
        assert (own.mask & fixed.mask).sum() / (own.mask | fixed.mask).sum() > 0.99
        assert np.allclose(own.box, fixed.box, atol=1.0)


def test_uncapped_memories_are_read_at_their_own_size(davis_root):
    """An uncapped memory (the paper's policy) has no fixed size to lay out in slots: padded
    to a few sizes its read did up to twice its work (slower on the H100), so the device
    step reads each memory at its own size and then decodes, and tracks as the capped
    memories' one pass while the memories hold the same entries."""
    sequence = davis_sequence(davis_root, "car-shadow")
    box = regions.mask_to_box(sequence.groundtruth[0])
    outputs, passes = {}, {}
    for cap in ("20", "None"):
        tracker = build_tracker("lite", device="cpu", overrides=["frame_ops=torch", f"memory.max_entries={cap}",
                                                                 "tuning.from_box=false"])
        read, passes[cap] = tracker.net.mask_probability, []

        def recorded(*args, read=read, seen=passes[cap]):
            seen.append(args[2].shape[2])
            return read(*args)

        tracker.net.mask_probability = recorded
        tracker.initialize(sequence.image(0), box)
        outputs[cap] = [tracker.track(sequence.image(i)) for i in range(1, 8)]
    assert len(passes["20"]) == 7 and passes["None"] == []
    for capped, uncapped in zip(outputs["20"], outputs["None"]):  # fewer entries than the cap
        assert np.array_equal(capped.mask, uncapped.mask) and np.array_equal(capped.box, uncapped.box)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("given", ["mask", "box"])
def test_gpu_resident_step_tracks_like_the_cpu_and_times_its_stages(davis_root, given):
    """Given a mask, lite tunes a decoder of its own, read and decoded outside the graphs;
    given a box, the shared decoder reads the memory in slots within one pass (timed as the
    decoder's)."""
    sequence = davis_sequence(davis_root, "car-shadow")
    truth = sequence.groundtruth
    region = truth[0] if given == "mask" else regions.mask_to_box(truth[0])
    ious = {}
    for device in ("cpu", "cuda"):
        tracker = build_tracker("lite", overrides={"probability_maps": True}, device=device)
        tracker.initialize(sequence.image(0), region)
        outputs = [tracker.track(sequence.image(i)) for i in range(1, 15)]
        ious[device] = np.mean([(o.mask & truth[i]).sum() / (o.mask | truth[i]).sum()
                                for i, o in enumerate(outputs, start=1)])
        if device == "cuda":
            assert isinstance(tracker.frames, DeviceFrames)
            times = tracker.timings
            assert times["query_encoder"] > 0 and times["decoder"] > 0
            assert (times["memory_read"] > 0) == (given == "mask")
            assert tracker.entries_at_launch and times["memory_write"] > 0  # every frame encodes at launch
            # the outputs are the caller's: none keeps the read-back's page-locked buffer alive
            assert not any(torch.from_numpy(o.probability).is_pinned() for o in outputs)
            assert not any(torch.from_numpy(o.mask).is_pinned() for o in outputs)
            assert len({o.probability.ctypes.data for o in outputs}) == len(outputs)
    assert abs(ious["cuda"] - ious["cpu"]) < 0.03
