"""CUDA graphs of the network's passes: the padding to power-of-two batches (checked on
any device with an eager runner), and graph replay against eager passes (CUDA only)."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from samn_tracker import build_tracker
from samn_tracker.config import preset
from samn_tracker.crops import CropWindow
from samn_tracker.datasets.davis import davis_sequence
from samn_tracker.frame_ops import DeviceFrames
from samn_tracker.front_pass import Front, front_pass
from samn_tracker.model.appearance_memory import AppearanceMemory, MemoryEntry, in_slots, slot_capacity
from samn_tracker.model.decoder import foreground_probability
from samn_tracker.model.graphs import BatchBuckets, PackedOutputs, pad_rows, padded_size
from samn_tracker.model.network import SAMNNetwork


def eager(fn, example, options):
    return functools.partial(fn, **options)


@pytest.fixture(scope="module")
def lite_net():
    torch.manual_seed(0)
    return SAMNNetwork(preset("lite").model).eval().prepare_for_inference()


def test_padded_sizes_and_rows():
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 17, 32)] == [1, 2, 4, 4, 8, 32, 32]
    with pytest.raises(ValueError):
        padded_size(0)
    x = torch.arange(6.0).view(3, 2)
    assert pad_rows(x, 3) is x
    assert pad_rows(x, 4).tolist() == [[0, 1], [2, 3], [4, 5], [4, 5]]


def test_outputs_packed_into_one_buffer_come_back_equal_and_dense():
    """A graph packs its outputs into one buffer, so a replay copies one tensor out: each
    output comes back equal, dense in its own dimension order (channels-last features stay
    channels-last, a strided view of every other row becomes dense), none overlapping."""
    features = torch.randn(2, 8, 5, 5).to(memory_format=torch.channels_last)
    every_other = torch.randn(4, 3, 6)[::2]
    outputs = (features, every_other, torch.randn(3), torch.randn(2, 0))
    packed = PackedOutputs(outputs)
    assert packed.size == sum(out.numel() for out in outputs)
    flat = torch.full((packed.size,), float("nan"))
    packed.write(flat, outputs)
    assert not torch.isnan(flat).any()  # every element written once: no gaps, no overlap
    back = packed.views(flat.clone())
    for out, view in zip(outputs, back):
        assert torch.equal(view, out) and view.shape == out.shape
    assert back[0].is_contiguous(memory_format=torch.channels_last) and back[1].is_contiguous()
    with pytest.raises(ValueError, match="one dtype"):
        PackedOutputs((features, torch.zeros(2, dtype=torch.long)))


def test_padded_batches_give_the_rows_of_the_plain_passes(lite_net):
    """Rows do not mix: a batch of 3 padded to 4 gives the same features and logits as
    the plain batch of 3, and one runner serves every batch that pads to the same size."""
    buckets = {name: BatchBuckets(getattr(lite_net, f"_{name}_pass"), eager) for name in ("query", "decoder")}
    crops = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain_query = lite_net._query_pass(crops)
        padded_query = buckets["query"](crops)
        for plain, padded in zip(plain_query, padded_query):
            assert padded.shape == plain.shape
            torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-5)
        key, value, _, s8, s4 = plain_query
        readout = torch.cat([value, value], dim=1)
        spatial = torch.rand(3, 1, 8, 8)
        (plain,) = lite_net._decoder_pass(readout, spatial, s8, s4, 128)
        (padded,) = buckets["decoder"](readout, spatial, s8, s4, out_size=128)
        torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-5)
        buckets["query"](crops[:1])
        buckets["query"](torch.cat([crops, crops[:1]]))
    assert len(buckets["query"].runners) == 2  # batches 3 and 4 share the padded size 4
    assert len(buckets["decoder"].runners) == 1


def front_inputs(net, rows: int, device="cpu"):
    """A front pass's inputs for ``rows`` targets of 120 x 160 frames: two 128-pixel crops
    each (segmentation and DCF), folded filters, resampling axes inside [-1, 1]."""
    generator = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (rows, 120, 160, 3), dtype=torch.uint8, generator=generator)
    windows = [[CropWindow(60.0 + 9 * i, 50.0 + 4 * i, side, 128) for side in (90.0, 100.0)] for i in range(rows)]
    axes = np.stack([DeviceFrames.crop_axes([w[j] for w in windows], (120, 160)) for j in (0, 1)], axis=1)
    channels = net.query_encoder.backbone.channels["s16"]
    scorers = torch.randn(rows, 16, channels, generator=generator) * 0.05
    spatial = torch.linspace(-0.9, 0.9, 8).expand(rows, 2, 8) * torch.rand(rows, 1, 1, generator=generator)
    return tuple(t.to(device) for t in (frames, torch.from_numpy(axes), scorers, spatial.contiguous()))


@pytest.mark.parametrize("dcf, spatial", [(True, "resampled"), (True, "none"), (False, "none")])
def test_padded_front_pass_gives_the_rows_of_the_plain_pass(lite_net, dcf, spatial):
    """The front pass (crops, query encoder, DCF scores, spatial map) padded by rows, as
    its CUDA graphs run it, gives each row what the plain pass gives."""
    front = functools.partial(front_pass, lite_net.query_pass)
    inputs = front_inputs(lite_net, 3)
    with torch.no_grad():
        plain = front(*inputs, dcf=dcf, spatial=spatial)
        padded = BatchBuckets(front, eager)(*inputs, dcf=dcf, spatial=spatial)
    assert len(plain) == len(padded) == 7 + dcf + (spatial != "none")
    for a, b in zip(plain, padded):
        assert a.shape == b.shape and a.shape[0] == 3
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    result = Front.of(plain, dcf, spatial)
    assert result.seg_crops.shape == (3, 3, 128, 128) and result.query.s16.shape[2:] == (8, 8)
    assert (result.peaks is None) != dcf and (result.spatial is None) == (spatial == "none")
    if dcf:
        assert result.peaks.shape == (3, 6)
    if spatial != "none":
        assert result.spatial.shape == (3, 1, 8, 8) and 0 <= float(result.spatial.min()) <= float(result.spatial.max()) <= 1


# What CUDA graph capture forbids: a value read to the host (an ``.item()``, a data-dependent
# shape) and a tensor made from host numbers inside a pass.
CAPTURE_FORBIDS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "lift_fresh", "lift_fresh_copy"}


def operators_of_a_second_call(pass_fn) -> set[str]:
    """The operators ``pass_fn()`` dispatches when called again (as after a graph's warm-up
    passes, which make cached constants)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = set()

    class Watch(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func._opname)
            return func(*args, **(kwargs or {}))

    with torch.no_grad():
        pass_fn()
        with Watch():
            pass_fn()
    return seen


def test_front_pass_reads_nothing_back_to_the_host(lite_net):
    """What capture forbids, checked on a CPU, after a first call."""
    inputs = front_inputs(lite_net, 2)
    seen = operators_of_a_second_call(lambda: front_pass(lite_net.query_pass, *inputs, dcf=True, spatial="resampled"))
    assert {"grid_sampler_2d", "bmm", "argmax"} <= seen  # the watch saw the pass
    assert not CAPTURE_FORBIDS & seen


def mask_inputs(net, lengths, device="cpu"):
    """Query features of 128-pixel crops, one per memory of ``lengths`` entries (random
    keys and values of the network's sizes), the spatial maps, and the memories' slots
    stacked at their batch's capacity: a mask pass's inputs."""
    generator = torch.Generator().manual_seed(4)
    crops = torch.rand(len(lengths), 3, 128, 128, generator=generator)
    with torch.no_grad():
        query = net.encode_query(crops.to(device))
    memories = []
    for length in lengths:
        memory = AppearanceMemory(max_entries=6)  # slots for 8: the first, 6 sampled, the last
        for i in range(length):
            key = torch.randn(net.cfg.key_dim, 64, generator=generator)
            entry = MemoryEntry(key.to(device), torch.randn(net.cfg.value_dim, 64, generator=generator).to(device), i)
            if i == 0:
                memory.set_first(entry)
            else:
                memory.add_sampled(entry)
        memories.append(memory)
    spatial = torch.rand(len(lengths), 1, 8, 8, generator=generator).to(device)
    slots = in_slots(memories, slot_capacity(memories))
    return query, memories, spatial, slots


@pytest.mark.parametrize("read_weight", [None, 0.0])
def test_padded_mask_pass_gives_each_target_its_read_and_decoder(lite_net, read_weight):
    """The memory read, decoder and softmax as one pass (the device step's, a CUDA graph on a
    GPU), memories of 1, 3 and 5 entries in slots for 8, padded by rows: each row is what
    its target's own read of its entries and the decoder give."""
    query, memories, spatial, (keys, values, valid) = mask_inputs(lite_net, (1, 3, 5))
    assert keys.shape[2] == 8 * 64
    with torch.no_grad():
        (padded,) = BatchBuckets(lite_net._mask_pass, eager)(
            query.key, query.value, query.s8, query.s4, spatial, keys, values, valid,
            out_size=128, read_weight=read_weight)
        assert padded.shape == (3, 1, 128, 128)
        for i, memory in enumerate(memories):
            readout = lite_net.read(query.select(i), *memory.keys_values(), read_weight=read_weight)
            alone = foreground_probability(lite_net.decode(readout, query.select(i), spatial[i:i + 1], 128))
            torch.testing.assert_close(padded[i:i + 1], alone, rtol=1e-5, atol=1e-5)
        together = lite_net.mask_probability(query, spatial, keys, values, valid, 128, read_weight)
    torch.testing.assert_close(together, padded, rtol=1e-5, atol=1e-5)
    assert (float(padded[0].std()) > 0) and not torch.allclose(padded[0], padded[1], atol=1e-3)


def test_mask_pass_reads_nothing_back_to_the_host(lite_net):
    query, _, spatial, slots = mask_inputs(lite_net, (2, 3))
    inputs = (query.key, query.value, query.s8, query.s4, spatial, *slots)
    seen = operators_of_a_second_call(lambda: lite_net._mask_pass(*inputs, out_size=128, read_weight=None))
    assert {"bmm", "convolution", "_softmax"} <= seen
    assert not CAPTURE_FORBIDS & seen


def test_a_graph_that_cannot_be_made_runs_its_pass_eagerly_with_a_warning():
    def refused(fn, example, options):
        raise RuntimeError("operation not permitted when stream is capturing")

    def pass_fn(x, scale):
        return (x * scale, x.sum(1))

    buckets = BatchBuckets(pass_fn, refused)
    x = torch.arange(6.0).view(3, 2)
    with pytest.warns(UserWarning, match=r"no CUDA graph of pass_fn at \[\(4, 2\)\] \(operation not permitted"):
        scaled, sums = buckets(x, scale=2.0)
    assert torch.equal(scaled, x * 2) and torch.equal(sums, x.sum(1))
    scaled, _ = buckets(x + 1, scale=2.0)  # the eager runner is kept: no second warning, no retry
    assert torch.equal(scaled, (x + 1) * 2) and len(buckets.runners) == 1


def test_cuda_graphs_need_a_gpu():
    with pytest.raises(RuntimeError, match="CUDA"):
        SAMNNetwork(preset("lite").model).eval().use_cuda_graphs()


@pytest.mark.parametrize("memory_pass", ["backbone", "query"])
def test_padded_memory_passes_give_the_rows_of_the_plain_pass(memory_pass):
    """The memory pass pads its inputs, (crops, masks) or (masks, query features), by rows too."""
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").replace(**{"model.memory_pass": memory_pass}).model).eval()
    net.prepare_for_inference()
    crops = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    masks = (torch.rand(3, 1, 128, 128, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    with torch.no_grad():
        inputs = (crops, masks) if memory_pass == "backbone" else (masks, net.encode_query(crops).s16)
        padded = BatchBuckets(net._memory_pass, eager)(*inputs)
        for plain, row_padded in zip(net._memory_pass(*inputs), padded):
            assert row_padded.shape == plain.shape
            torch.testing.assert_close(row_padded, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_replay_equals_the_eager_passes():
    net = SAMNNetwork(preset("lite").model).eval().cuda().prepare_for_inference()
    crops = torch.rand(2, 3, 128, 128, device="cuda")
    with torch.no_grad():
        eager_query = net.encode_query(crops)
        net.use_cuda_graphs()
        first = net.encode_query(crops)
        second = net.encode_query(crops.flip(0))  # a replay must not overwrite what came back
        for name in ("key", "value", "s16", "s8", "s4"):
            torch.testing.assert_close(getattr(first, name), getattr(eager_query, name), rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(getattr(second, name), getattr(eager_query, name).flip(0),
                                       rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(net.encode_backbone(crops), eager_query.s16, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_front_pass_replayed_equals_the_eager_pass():
    """Against the eager pass of the same padded batch: under TF32 (PyTorch's default for
    convolutions) cuDNN picks an algorithm per shape, and 3 rows against 3 rows padded to 4
    differed by 3e-3 on an H100. That padding gives each row its plain result is the
    CPU test above's."""
    net = SAMNNetwork(preset("lite").model).eval().cuda().prepare_for_inference()
    front = functools.partial(front_pass, net.query_pass)
    inputs = front_inputs(net, 3, "cuda")
    with torch.no_grad():
        plain = BatchBuckets(front, eager)(*inputs, dcf=True, spatial="resampled")
        graphed = BatchBuckets(front)
        first = graphed(*inputs, dcf=True, spatial="resampled")
        flipped = graphed(*(t.flip(0) for t in inputs), dcf=True, spatial="resampled")
    assert len(graphed.runners) == 1
    for a, b, c in zip(plain, first, flipped):  # a replay must not overwrite what came back
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(c, a.flip(0), rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mask_pass_replayed_equals_the_eager_pass():
    """The read and decoder from a graph (memories of 1, 3 and 5 entries in slots for 8),
    against the same padded batch eager (TF32: see above), and against each row's read of
    its entries alone (the fused attention with and without the slots' mask)."""
    net = SAMNNetwork(preset("lite").model).eval().cuda().prepare_for_inference()
    query, memories, spatial, slots = mask_inputs(net, (1, 3, 5), "cuda")
    inputs = (query.key, query.value, query.s8, query.s4, spatial, *slots)
    with torch.no_grad():
        (plain,) = BatchBuckets(net._mask_pass, eager)(*inputs, out_size=128, read_weight=None)
        graphed = BatchBuckets(net._mask_pass)
        (first,) = graphed(*inputs, out_size=128, read_weight=None)
        (flipped,) = graphed(*(t.flip(0) for t in inputs), out_size=128, read_weight=None)
        alone = torch.cat([foreground_probability(net.decode(net.read(query.select(i), *m.keys_values()),
                                                             query.select(i), spatial[i:i + 1], 128))
                           for i, m in enumerate(memories)])
    assert len(graphed.runners) == 1
    torch.testing.assert_close(first, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(flipped, plain.flip(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(first, alone, rtol=5e-3, atol=5e-3)  # other batch shapes: TF32 rounds otherwise


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tracker_with_graphs_tracks_like_without(davis_root):
    """Replayed passes differ from eager ones by rounding only (TF32 convolutions pick
    their algorithms per shape), so both track the car as well as each other."""
    sequence = davis_sequence(davis_root, "car-shadow")
    truth = sequence.groundtruth
    ious = {}
    for graphs in (False, True):
        tracker = build_tracker("lite", device="cuda", overrides={"cuda_graphs": graphs})
        tracker.initialize(sequence.image(0), truth[0])
        outputs = [tracker.track(sequence.image(i)) for i in range(1, 15)]
        ious[graphs] = np.mean([(o.mask & truth[i]).sum() / (o.mask | truth[i]).sum()
                                for i, o in enumerate(outputs, start=1)])
        assert bool(tracker.net._graphs) == graphs
    assert ious[True] > 0.8 and abs(ious[True] - ious[False]) < 0.03, ious
