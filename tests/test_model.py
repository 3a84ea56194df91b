import math

import pytest
import torch
import torch.nn.functional as F

from samn_tracker.config import preset
from samn_tracker.model.appearance_memory import (AppearanceMemory, MemoryEntry, fused_read, read_memories,
                                                  in_slots, read_memory, slot_capacity)
from samn_tracker.model.decoder import Decoder
from samn_tracker.model.network import SAMNNetwork


def read_memory_reference(query_key: torch.Tensor, memory_keys: torch.Tensor,
                          memory_values: torch.Tensor) -> torch.Tensor:
    """The read written out as in the paper: the oracle of ``read_memory``."""
    b, dk, h, w = query_key.shape
    q = query_key.flatten(2)                                   # (B, dk, HW)
    affinity = torch.einsum("bkn,bkm->bnm", memory_keys, q) / math.sqrt(dk)   # (B, N, HW)
    weights = affinity.softmax(dim=1)
    return torch.einsum("bvn,bnm->bvm", memory_values, weights).reshape(b, -1, h, w)


def test_attention_read_equals_naive_reference():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 16, 5, 7, generator=g)
    k = torch.randn(2, 16, 3 * 35, generator=g)
    v = torch.randn(2, 24, 3 * 35, generator=g)
    fast = read_memory(q, k, v)
    assert fast.shape == (2, 24, 5, 7)
    torch.testing.assert_close(fast, read_memory_reference(q, k, v), rtol=1e-4, atol=1e-5)


def test_a_sharp_read_equals_the_reference_in_double_precision():
    # Logits spread over hundreds, as a trained read's are: most weights underflow, many of
    # them to subnormals, and the read must still be the softmax read.
    g = torch.Generator().manual_seed(1)
    q = 6 * torch.randn(1, 16, 6, 6, generator=g)
    k = 6 * torch.randn(1, 16, 700, generator=g)
    v = torch.randn(1, 8, 700, generator=g)
    reference = read_memory_reference(q.double(), k.double(), v.double())
    torch.testing.assert_close(read_memory(q, k, v).double(), reference, rtol=1e-4, atol=1e-5)


def test_read_of_a_single_matching_key_returns_its_value():
    # A memory key far more similar to the query than the others receives all the weight.
    k = torch.zeros(1, 4, 3)
    k[0, 0, 1] = 100.0
    v = torch.arange(6.0).view(1, 2, 3)
    q = torch.zeros(1, 4, 1, 1)
    q[0, 0] = 1.0
    out = read_memory(q, k, v)
    torch.testing.assert_close(out.flatten(), v[0, :, 1])


def test_each_target_reads_its_own_memory_as_if_alone(davis_root):
    """A lockstep step reads every target's memory in one attention per memory layout: each
    row must be what that target's read alone gives (shipped lite model, real frames;
    memories of 1, 2, 2 and 3 entries, the two of 2 entries alike in layout only, and two of
    entries of unequal sizes; rows stay in order)."""
    from samn_tracker.build import build_tracker
    from samn_tracker.datasets import read_image

    net = build_tracker("lite", device="cpu").net
    frames = sorted((davis_root / "JPEGImages" / "480p" / "car-shadow").glob("*.jpg"))[:10]
    images = [torch.from_numpy(read_image(f)).permute(2, 0, 1).float()[None] / 255 for f in frames]
    crops = torch.cat([F.interpolate(image, size=(256, 256), mode="bilinear") for image in images])
    small = F.interpolate(images[9], size=(128, 128), mode="bilinear")
    masks = torch.rand(4, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        query = net.encode_query(crops[:6])
        keys, values = net.encode_memory(crops[6:], masks)
        keys = net.memory_key(keys, net.encode_query(crops[6:]).s16).flatten(2)
        values = values.flatten(2)
        small_key, small_value = net.encode_memory(small, masks[:1, :, ::2, ::2])
        small_entry = MemoryEntry(net.memory_key(small_key, net.encode_query(small).s16).flatten(2)[0],
                                  small_value.flatten(2)[0], 9)
        entry = [MemoryEntry(k, v, i) for i, (k, v) in enumerate(zip(keys, values))]
        layouts = ([entry[0]], [entry[0], entry[1]], [entry[2], entry[3]], [entry[0], entry[1], entry[2]],
                   [entry[3], small_entry], [entry[1], small_entry])
        memories = []
        for entries in layouts:
            memory = AppearanceMemory()
            memory.set_first(entries[0])
            for later in entries[1:]:
                memory.add_sampled(later)
            memories.append(memory)
        assert memories[1].layout() == memories[2].layout() == (256, 256)
        assert memories[4].layout() == memories[5].layout() == (256, 64)
        together = net.read_each(query, memories)
        for i, memory in enumerate(memories):
            assert torch.equal(together[i:i + 1], net.read(query.select(i), *memory.keys_values()))
        rows = torch.cat([read_memory(net.query_key(query)[i:i + 1], *m.keys_values()) for i, m in enumerate(memories)])
        assert torch.equal(read_memories(net.query_key(query), memories), rows)
    assert not torch.equal(together[1], together[2])
    with pytest.raises(ValueError, match="5 memories"):
        read_memories(net.query_key(query), memories[:5])


def _entry(frame):
    return MemoryEntry(torch.full((2, 3), float(frame)), torch.full((4, 3), float(frame)), frame)


def test_memory_cap_keeps_first_and_last_and_evicts_oldest_sampled():
    memory = AppearanceMemory(keep_first=True, max_entries=2)
    memory.set_first(_entry(0))
    for frame in (5, 10, 15):
        memory.add_sampled(_entry(frame))
    memory.set_last(_entry(16))
    assert [e.frame for e in memory.entries()] == [0, 10, 15, 16]
    keys, values = memory.keys_values()
    assert keys.shape == (1, 2, 12) and values.shape == (1, 4, 12)
    memory.add_sampled(_entry(20))
    assert [e.frame for e in memory.entries()] == [0, 15, 20, 16]


def _random_memory(entries: int, max_entries=None, seed=0, keep_first=True) -> AppearanceMemory:
    """A memory of ``entries`` entries of 12 positions, keys spread as a trained read's are."""
    g = torch.Generator().manual_seed(seed)
    memory = AppearanceMemory(keep_first=keep_first, max_entries=max_entries)
    made = [MemoryEntry(6 * torch.randn(16, 12, generator=g), torch.randn(8, 12, generator=g), 5 * i)
            for i in range(entries)]
    memory.set_first(made[0])
    for entry in made[1:-1]:
        memory.add_sampled(entry)
    if entries > 1:
        memory.set_last(made[-1])
    return memory


@pytest.mark.parametrize("entries, capacity", [(1, 1), (1, 4), (3, 4), (5, 7)])
def test_a_read_of_slots_equals_the_read_of_the_entries(entries, capacity):
    """A memory laid out in fixed slots (the GPU step's read at a fixed size) reads as its
    entries do: the unused slots, zero keys that would otherwise take weight, weigh nothing,
    also where the CPU read raises tiny weights to a floor, and in the fused kernel a GPU
    reads with (run here on the CPU)."""
    memory = _random_memory(entries, seed=entries)
    keys, values, valid = in_slots([memory], capacity)
    assert keys.shape == (1, 16, 12 * capacity) and values.shape == (1, 8, 12 * capacity)
    assert valid.shape == (1, 12 * capacity) and int(valid.sum()) == 12 * entries and bool(valid[0, :12 * entries].all())
    direction = torch.randn(1, 16, 3, 4, generator=torch.Generator().manual_seed(9))
    for q in (6 * direction, 0.02 * direction):  # a sharp read (weights floored on a CPU) and a flat one
        alone = read_memory(q, *memory.keys_values())
        torch.testing.assert_close(read_memory(q, keys, values, valid), alone, rtol=1e-6, atol=1e-6)
        reference = read_memory_reference(q.double(), *(t.double() for t in memory.keys_values()))
        torch.testing.assert_close(read_memory(q, keys, values, valid).double(), reference, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fused_read(q, keys, values, valid).double(), reference, rtol=1e-4, atol=1e-5)
    if capacity > entries:  # the flat read would give the unused slots weight
        assert not torch.allclose(read_memory(q, keys, values), alone, rtol=1e-3, atol=1e-3)


def test_slots_are_sized_for_the_batch_and_hold_each_memory_in_read_order():
    capped = [_random_memory(n, max_entries=3, seed=n) for n in (1, 4)]
    uncapped = [_random_memory(n, seed=n) for n in (1, 3, 5)]
    assert slot_capacity(capped) == 5  # first, three sampled, last: the most it can hold
    assert slot_capacity(capped, fixed=False) == 4 and slot_capacity(capped[:1], fixed=False) == 1
    for fixed in (True, False):
        with pytest.raises(ValueError, match="uncapped"):
            slot_capacity(capped + uncapped[:1], fixed=fixed)
    memories = capped + uncapped
    keys, values, valid = in_slots(memories, 8)
    assert keys.shape == (5, 16, 96) and values.shape == (5, 8, 96) and keys.is_contiguous()
    for i, memory in enumerate(memories):
        used = 12 * len(memory)
        assert valid[i].tolist() == [True] * used + [False] * (96 - used)
        for stacked, alone in zip((keys, values), memory.keys_values()):
            assert torch.equal(stacked[i:i + 1, :, :used], alone) and not stacked[i, :, used:].any()
    q = torch.randn(5, 16, 3, 4, generator=torch.Generator().manual_seed(3))
    for read in (read_memory, fused_read):  # the batch read at once, each row its own memory
        alone = torch.cat([read_memory(q[i:i + 1], *m.keys_values()) for i, m in enumerate(memories)])
        torch.testing.assert_close(read(q, keys, values, valid), alone, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="5 entries do not fit 4 slots"):
        in_slots(memories, 4)


def test_code_variant_drops_first_frame_once_other_entries_exist():
    memory = AppearanceMemory(keep_first=False)
    memory.set_first(_entry(0))
    assert [e.frame for e in memory.entries()] == [0]
    memory.set_last(_entry(1))
    assert [e.frame for e in memory.entries()] == [1]


def test_decoder_fusions_change_the_output_only_through_the_map():
    torch.manual_seed(0)
    readout, s8, s4 = torch.randn(1, 8, 4, 4), torch.randn(1, 5, 8, 8), torch.randn(1, 3, 16, 16)
    for fusion in ("sum", "cat"):
        dec = Decoder(8, 5, 3, 6, fusion)
        a = dec(readout, torch.zeros(1, 1, 4, 4), s8, s4, 64)
        b = dec(readout, torch.ones(1, 1, 4, 4), s8, s4, 64)
        assert a.shape == (1, 2, 64, 64)
        assert not torch.allclose(a, b)
    dec = Decoder(8, 5, 3, 6, "none")
    torch.testing.assert_close(dec(readout, torch.zeros(1, 1, 4, 4), s8, s4, 64),
                               dec(readout, torch.ones(1, 1, 4, 4), s8, s4, 64))


def test_lite_network_shapes_on_a_crop():
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").model).eval()
    crop = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        q = net.encode_query(crop)
        key, value = net.encode_memory(crop, torch.zeros(1, 1, 128, 128))
        logits = net.decode(net.read(q, key.flatten(2), value.flatten(2)), q, torch.zeros(1, 1, 8, 8), 128)
    assert q.key.shape == (1, 32, 8, 8) and q.value.shape == (1, 128, 8, 8)
    assert key.shape == (1, 32, 8, 8) and value.shape == (1, 128, 8, 8)
    assert logits.shape == (1, 2, 128, 128)
    assert torch.isfinite(logits).all()
    trained = net.trained_state_dict()
    assert trained and not any(k.startswith("query_encoder.backbone.") for k in trained)


@pytest.mark.parametrize("name", ["lite", "paper"])
def test_the_backbone_pass_gives_the_query_passs_features_without_the_heads(name):
    """The DCF reads only the query encoder's backbone features: its backbone pass must give
    them bit for bit, prepared for inference as the tracker's network is (and in row chunks
    on a CPU), and run no key or value head."""
    torch.manual_seed(0)
    cfg = preset(name).model.replace(pretrained_backbone=False)
    net = SAMNNetwork(cfg).eval().prepare_for_inference()
    crops = torch.rand(5, 3, 96, 96)
    heads = []
    for head in (net.query_encoder.key, net.query_encoder.value):
        head.register_forward_hook(lambda *args: heads.append(1))
    with torch.no_grad():
        s16 = net.encode_backbone(crops)
        assert not heads
        assert torch.equal(s16, net.encode_query(crops).s16)
    assert s16.shape == (5, net.query_encoder.backbone.channels["s16"], 6, 6)


def test_backbone_keys_read_by_cosine_over_the_temperature():
    """``key_source="backbone"``: the read's weights are softmax(cos(f_query, f_memory) / T) of the
    backbone's stride-16 features, whatever their length; the key heads play no part."""
    torch.manual_seed(0)
    cfg = preset("lite").model.replace(key_source="backbone", key_temperature=0.1, pretrained_backbone=False)
    net = SAMNNetwork(cfg).eval()
    q_feats, m_feats = 3.0 * torch.randn(1, 112, 4, 5), torch.randn(1, 112, 6)
    values = torch.randn(1, 7, 6)
    keys = net.feature_key(m_feats[..., None]).flatten(2)
    got = read_memory(net.feature_key(q_feats), keys, values)
    cos = torch.einsum("bkn,bkm->bnm", torch.nn.functional.normalize(m_feats, dim=1),
                       torch.nn.functional.normalize(q_feats.flatten(2), dim=1))
    expected = torch.einsum("bvn,bnm->bvm", values, (cos / 0.1).softmax(dim=1)).reshape(1, 7, 4, 5)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    from samn_tracker.model.encoders import QueryFeatures
    query = QueryFeatures(torch.randn(1, 32, 4, 5), torch.randn(1, 128, 4, 5), q_feats, None, None)
    assert torch.equal(net.query_key(query), net.feature_key(q_feats))
    assert torch.equal(net.memory_key(torch.randn(1, 32, 4, 5), q_feats), net.feature_key(q_feats))


@pytest.mark.parametrize("backbone, memory_pass, size, exact", [("efficientnet_lite0", "query", 256, True),
                                                                  ("resnet50", "backbone", 64, False)])
def test_cpu_passes_in_row_chunks_give_the_rows_of_one_pass(backbone, memory_pass, size, exact):
    """On a CPU an inference pass takes CPU_PASS_ROWS rows at a time (cache-sized). Its
    outputs are those of one pass over every row: bit for bit at ``lite``'s crop size (else
    tracks would move), to float rounding at sizes whose products block otherwise."""
    from samn_tracker.model.network import CPU_PASS_ROWS

    def same(a, b):
        return torch.equal(a, b) if exact else torch.allclose(a, b, rtol=1e-5, atol=1e-6)

    torch.manual_seed(0)
    cfg = preset("lite").replace(**{"model.backbone": backbone, "model.memory_pass": memory_pass,
                                    "model.pretrained_backbone": False}).model
    net = SAMNNetwork(cfg).eval().prepare_for_inference()
    rows, cells = 2 * CPU_PASS_ROWS + 1, size // 16
    crops = torch.rand(rows, 3, size, size, generator=torch.Generator().manual_seed(1))
    masks = (torch.rand(rows, 1, size, size, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    with torch.no_grad():
        whole = net._query_pass(crops)
        assert all(same(a, b) for a, b in zip(net.query_pass(crops), whole))
        query = net.encode_query(crops)
        assert all(same(a, b) for a, b in zip((query.key, query.value, query.s16, query.s8, query.s4), whole))
        memory_inputs = (crops, masks) if memory_pass == "backbone" else (masks, query.s16)
        assert all(same(a, b) for a, b in zip(net._run("memory", *memory_inputs), net._memory_pass(*memory_inputs)))
        readout = torch.rand(rows, 2 * cfg.value_dim, cells, cells, generator=torch.Generator().manual_seed(3))
        spatial = torch.rand(rows, 1, cells, cells, generator=torch.Generator().manual_seed(4))
        assert same(net.decode(readout, query, spatial, size),
                    net._decoder_pass(readout, spatial, query.s8, query.s4, size)[0])
