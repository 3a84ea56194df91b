"""The SAMN network: query encoder, memory encoder, appearance-memory read and decoder.

The spatial memory (DCF) is not a module: it is fitted online by the tracker on the
query encoder's stride-16 features.
"""
from __future__ import annotations

import math
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import ContextManager, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.utils.fusion import fuse_conv_bn_eval

from samn_tracker.backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from samn_tracker.config import PRECISIONS, ModelConfig
from samn_tracker.errors import InputError
from samn_tracker.model.appearance_memory import AppearanceMemory, read_memories, read_memory
from samn_tracker.model.decoder import Decoder, foreground_probability
from samn_tracker.model.encoders import MemoryEncoder, QueryEncoder, QueryFeatures, QueryReuseMemoryEncoder
from samn_tracker.model.graphs import BatchBuckets

BACKBONE_PREFIXES = ("query_encoder.backbone.", "memory_encoder.backbone.")
DTYPES = dict(zip(PRECISIONS, (None, torch.bfloat16, torch.float16)))  # None: no autocast
# Rows an inference pass takes at a time on a CPU. Larger batches overflow the caches: the
# 27 augmented crops of a `lite` start through the query encoder took 387 ms in batches of
# 8 and 217-225 ms in batches of 2 to 4 (AMD EPYC, one thread), the same numbers bit for bit.
CPU_PASS_ROWS = 4
# Stacked decoder weights kept (``decode_stacked``): two overlapping lockstep groups, each
# with its rows before and after a target leaves.
STACKS_KEPT = 4


def slow_cpu_precisions() -> tuple[str, ...]:
    """Half precisions this CPU runs far slower than fp32: fp16 always; bf16 unless oneDNN
    finds bf16 instructions (AVX512-BF16 / AMX; on the project's AVX2 EPYC lite ran 1.2
    instead of 27 fps)."""
    return ("fp16",) if torch.ops.mkldnn._is_mkldnn_bf16_supported() else ("bf16", "fp16")


class SAMNNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig, backbone_weights: Optional[str | Path] = None):
        super().__init__()
        self.cfg = cfg
        pretrained = cfg.pretrained_backbone

        def backbone():
            return build_backbone(cfg.backbone, pretrained=pretrained, weights_path=backbone_weights)

        self.query_encoder = QueryEncoder(backbone(), cfg.key_dim, cfg.value_dim)
        channels = self.query_encoder.backbone.channels
        self.memory_encoder = (MemoryEncoder(backbone(), cfg.key_dim, cfg.value_dim) if cfg.memory_pass == "backbone"
                               else QueryReuseMemoryEncoder(channels["s16"], cfg.key_dim, cfg.value_dim))
        self.decoder = Decoder(2 * cfg.value_dim, channels["s8"], channels["s4"], cfg.decoder_dim,
                               cfg.spatial_fusion)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.inference_dtype: Optional[torch.dtype] = None
        self._graphs: dict[str, BatchBuckets] = {}
        self._stacked: dict[tuple[int, ...], tuple[tuple, dict[str, torch.Tensor]]] = {}

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> ImageNet-normalised."""
        return (images - self.mean) / self.std

    def encode_query(self, images: torch.Tensor) -> QueryFeatures:
        return QueryFeatures(*self._run("query", images))

    def encode_backbone(self, images: torch.Tensor) -> torch.Tensor:
        """The query encoder's backbone features (B, C, H16, W16) alone, without its key and
        value heads: what the DCF reads. For a start's 27 augmented DCF crops the heads
        would add a tenth (``lite``) to three quarters (``paper``) of the backbone's work."""
        return self._run("backbone", images)[0]

    def encode_memory(self, images: torch.Tensor, foreground: torch.Tensor,
                      s16: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Key (B, dk, H16, W16) and value (B, dv, H16, W16) of frames with their masks.
        ``s16``: the frames' query-encoder backbone features where the caller has them,
        which ``memory_pass="query"`` reads instead of encoding the frames again."""
        if self.cfg.memory_pass == "backbone":
            return self._run("memory", images, foreground)
        if s16 is None:
            s16 = self.encode_backbone(images)
        return self._run("memory", foreground, s16)

    def query_pass(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The query encoder's (key, value, s16, s8, s4), run as it is: for a larger pass
        that is replayed from a CUDA graph of its own (``front_pass``)."""
        return self._in_row_chunks(self._query_pass, images)

    def _query_pass(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with self._autocast():
            feats = self.query_encoder(self.normalise(images))
        out = (feats.key, feats.value, feats.s16, feats.s8, feats.s4)
        return out if self.inference_dtype is None else tuple(t.float() for t in out)

    def _backbone_pass(self, images: torch.Tensor) -> tuple[torch.Tensor]:
        with self._autocast():
            s16 = self.query_encoder.backbone(self.normalise(images))["s16"]
        return (s16 if self.inference_dtype is None else s16.float(),)

    def _memory_pass(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(images, foreground) through the memory encoder's backbone, or (foreground, s16)."""
        if self.cfg.memory_pass == "backbone":
            images, foreground = inputs
            inputs = (self.normalise(images), foreground)
        with self._autocast():
            key, value = self.memory_encoder(*inputs)
        return key.float(), value.float()

    def _decoder_pass(self, readout: torch.Tensor, spatial_map: Optional[torch.Tensor], s8: torch.Tensor,
                      s4: torch.Tensor, out_size: int,
                      weights: Optional[dict[str, torch.Tensor]] = None) -> tuple[torch.Tensor]:
        inputs = (readout, spatial_map, s8, s4, out_size)
        with self._autocast():
            logits = self.decoder(*inputs) if weights is None else functional_call(self.decoder, weights, inputs)
        return (logits.float(),)

    def _mask_pass(self, key: torch.Tensor, value: torch.Tensor, s8: torch.Tensor, s4: torch.Tensor,
                   spatial_map: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor,
                   valid: torch.Tensor, out_size: int, read_weight: Optional[float]) -> tuple[torch.Tensor]:
        """``mask_probability``'s pass; ``key``: the query's learned key, or with
        ``key_source="backbone"`` its backbone features, made into the key here."""
        if self.cfg.key_source != "learned":
            key = self.feature_key(key)
        with self._autocast():
            read = read_memory(key, memory_keys, memory_values, valid).float()
        (logits,) = self._decoder_pass(self._readout(read, value, read_weight), spatial_map, s8, s4, out_size)
        return (foreground_probability(logits),)

    def _run(self, name: str, *inputs: torch.Tensor, **options) -> tuple[torch.Tensor, ...]:
        """Pass ``name`` eagerly, or replayed from its CUDA graphs after ``use_cuda_graphs``."""
        graphed = self._graphs.get(name)
        if graphed is not None:
            return graphed(*inputs, **options)
        return self._in_row_chunks(getattr(self, f"_{name}_pass"), *inputs, **options)

    def _in_row_chunks(self, pass_fn, *inputs: torch.Tensor, **options) -> tuple[torch.Tensor, ...]:
        """``pass_fn`` on chunks of at most ``CPU_PASS_ROWS`` rows when inferring on a CPU; as
        it is on a GPU, which wants one large pass, and in training, whose BatchNorm mixes
        rows. In eval mode rows are independent, and at the presets' crop sizes chunks of two
        rows or more give the one pass's numbers bit for bit (tested); a pass of one row
        multiplies its 1x1 convolutions another way (4e-8 apart), so the chunks are of
        nearly equal sizes, never one row beside larger ones."""
        rows = inputs[0].shape[0]
        if self.training or inputs[0].device.type != "cpu" or rows <= CPU_PASS_ROWS:
            return pass_fn(*inputs, **options)
        chunks = -(-rows // CPU_PASS_ROWS)
        parts = [pass_fn(*chunk, **options) for chunk in zip(*(x.tensor_split(chunks) for x in inputs))]
        return tuple(torch.cat(outputs) for outputs in zip(*parts))

    def use_cuda_graphs(self) -> "SAMNNetwork":
        """Replay the encoders (and the query encoder's backbone alone), the decoder, and the
        memory read with the decoder (``mask_probability``) from CUDA graphs
        (``model/graphs.py``): one kernel launch per pass instead of hundreds. For a prepared
        network on a GPU."""
        if self.mean.device.type != "cuda" or self.training:
            raise RuntimeError("CUDA graphs need an eval-mode network on a CUDA device")
        self._graphs = {name: BatchBuckets(getattr(self, f"_{name}_pass"))
                        for name in ("query", "backbone", "memory", "decoder", "mask")}
        return self

    def read(self, query: QueryFeatures, memory_keys: torch.Tensor, memory_values: torch.Tensor,
             read_weight: Optional[torch.Tensor | float] = None,
             value_weight: Optional[torch.Tensor | float] = None) -> torch.Tensor:
        """Read-out R = concat(V_read, V_query) (B, 2 dv, H16, W16); separate so it can be timed.

        ``read_weight`` / ``value_weight`` (a number, or (B,) per sample) scale one half:
        the ablation without the memory read, and training's query-value dropout.
        """
        with self._autocast():
            read = read_memory(self.query_key(query), memory_keys, memory_values).float()
        return self._readout(read, query.value, read_weight, value_weight)

    def read_each(self, query: QueryFeatures, memories: Sequence[AppearanceMemory],
                  read_weight: Optional[float] = None) -> torch.Tensor:
        """``read`` with each query row reading its own memory: a lockstep step's targets,
        read in one attention per memory layout (``read_memories``)."""
        with self._autocast():
            read = read_memories(self.query_key(query), memories).float()
        return self._readout(read, query.value, read_weight)

    def mask_probability(self, query: QueryFeatures, spatial_map: torch.Tensor, memory_keys: torch.Tensor,
                         memory_values: torch.Tensor, valid: torch.Tensor, out_size: int,
                         read_weight: Optional[float] = None) -> torch.Tensor:
        """The foreground probability (B, 1, S, S) of the query crops, each reading its own
        memory laid out in slots of one size (``in_slots``: keys (B, dk, N),
        values (B, dv, N), ``valid`` (B, N)): the read, the decoder and the softmax as one
        pass, on a GPU one CUDA graph per padded batch and memory size. ``read_weight`` as
        in ``read``."""
        key = query.key if self.cfg.key_source == "learned" else query.s16
        return self._run("mask", key, query.value, query.s8, query.s4, spatial_map, memory_keys, memory_values,
                         valid, out_size=out_size, read_weight=read_weight)[0]

    @staticmethod
    def _readout(read: torch.Tensor, value: torch.Tensor, read_weight: Optional[torch.Tensor | float],
                 value_weight: Optional[torch.Tensor | float] = None) -> torch.Tensor:
        if read_weight is not None:
            read = read * _per_sample(read_weight, read)
        if value_weight is not None:
            value = value * _per_sample(value_weight, value)
        return torch.cat([read, value], dim=1)

    def query_key(self, query: QueryFeatures) -> torch.Tensor:
        """What the query frame reads the memory with (``ModelConfig.key_source``)."""
        return query.key if self.cfg.key_source == "learned" else self.feature_key(query.s16)

    def memory_key(self, encoded: torch.Tensor, s16: torch.Tensor) -> torch.Tensor:
        """The key a memory frame is stored under: the memory encoder's ``encoded`` key, or
        with ``key_source="backbone"`` the frame's own backbone features ``s16`` (as the query
        encoder saw the same crop)."""
        return encoded if self.cfg.key_source == "learned" else self.feature_key(s16)

    def feature_key(self, s16: torch.Tensor) -> torch.Tensor:
        """Unit-length backbone features, scaled so that the read's softmax(q.k / sqrt(d))
        is softmax(cosine / key_temperature)."""
        scale = s16.shape[1] ** 0.25 / math.sqrt(self.cfg.key_temperature)
        return F.normalize(s16.float(), dim=1) * scale

    def decode(self, readout: torch.Tensor, query: QueryFeatures,
               spatial_map: Optional[torch.Tensor], out_size: int,
               weights: Optional[dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """Logits (B, 2, S, S); ``weights``: a target's own decoder (``decoder_tuning``) in place
        of the shared one."""
        if spatial_map is None or weights is not None:  # eager: a graph takes tensors and replays the shared weights
            return self._decoder_pass(readout, spatial_map, query.s8, query.s4, out_size, weights)[0]
        return self._run("decoder", readout, spatial_map, query.s8, query.s4, out_size=out_size)[0]

    def decode_each(self, readout: torch.Tensor, query: QueryFeatures, spatial_map: torch.Tensor, out_size: int,
                    weights: Sequence[Optional[dict[str, torch.Tensor]]]) -> torch.Tensor:
        """``decode`` of each row with its own weights (None: the shared decoder). On a GPU one
        pass over the rows with their weights stacked (``vmap``: a grouped convolution per layer
        instead of a decoder per row, whose launches a lockstep batch of tuned targets would
        wait on); on a CPU row by row, where the grouped convolutions are slower."""
        if readout.device.type == "cpu" or len(weights) == 1:
            return torch.cat([self.decode(readout[i:i + 1], query.select(i), spatial_map[i:i + 1], out_size,
                                          weights=w) for i, w in enumerate(weights)])
        return self.decode_stacked(readout, query, spatial_map, out_size, weights)

    def decode_stacked(self, readout: torch.Tensor, query: QueryFeatures, spatial_map: torch.Tensor,
                       out_size: int, weights: Sequence[Optional[dict[str, torch.Tensor]]]) -> torch.Tensor:
        """``decode_each``'s one pass over the rows (the same logits within float rounding)."""
        stacked = self._stacked_weights(weights)

        def one(w, readout_row, map_row, s8_row, s4_row):
            inputs = (readout_row[None], map_row[None], s8_row[None], s4_row[None], out_size)
            return functional_call(self.decoder, w, inputs)[0]

        with self._autocast():
            logits = vmap(one)(stacked, readout, spatial_map, query.s8, query.s4)
        return logits.float()

    def _stacked_weights(self, weights: Sequence[Optional[dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
        """The rows' decoder weights stacked, kept for the next steps: a lockstep group decodes
        its targets with the same weights step after step (tuned weights never change), and
        stacking them copies every weight of every row. Kept for the ``STACKS_KEPT`` row lists
        used last, known by the identity of their weights (held here, so no identity is reused),
        so that overlapping groups (``--groups``) take turns without stacking again."""
        rows = tuple(weights)
        key = tuple(map(id, rows))
        if key in self._stacked:
            self._stacked[key] = self._stacked.pop(key)  # used last: evicted last
        else:
            shared = dict(self.decoder.named_parameters())
            self._stacked[key] = (rows, {name: torch.stack([(shared if w is None else w)[name] for w in rows])
                                         for name in shared})
            while len(self._stacked) > STACKS_KEPT:
                del self._stacked[next(iter(self._stacked))]
        return self._stacked[key][1]

    def _autocast(self) -> ContextManager:
        """Reduced-precision compute chosen by ``prepare_for_inference``; outputs stay float32."""
        if self.inference_dtype is None:
            return nullcontext()
        # No weight-cast cache: it would outlive a CUDA graph's capture (and each call
        # opens its own context, so it saved nothing).
        return torch.autocast(self.mean.device.type, dtype=self.inference_dtype, cache_enabled=False)

    def prepare_for_inference(self, precision: str = "fp32") -> "SAMNNetwork":
        """Fold the backbones' BatchNorms into their convs and use channels-last tensors.

        Same function up to float rounding (outputs within ~1e-5 relative), with a third
        fewer kernels; on a CPU the lite encoders run ~1.7x faster. The memory encoder's
        stem keeps its BatchNorm: it normalises the sum of the RGB and mask stems.
        ``precision`` "bf16" / "fp16" runs the network under autocast (outputs float32);
        that changes outputs by more than rounding, so it is opt-in; a half precision
        this CPU has no fast kernels for gets a warning, since it is far slower than fp32.
        Only for an eval-mode network that is not trained further.
        """
        if self.training:
            raise RuntimeError("prepare_for_inference() needs an eval-mode network")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
        slow = slow_cpu_precisions() if self.mean.device.type == "cpu" else ()
        if precision in slow:
            faster = "fp32" if "bf16" in slow else "bf16 or fp32"
            warnings.warn(f"{precision} on a CPU is slow (no fast half-precision kernels here: the lite "
                          f"preset ran ~20x slower than in fp32); use {faster} there", stacklevel=2)
        self.inference_dtype = DTYPES[precision]
        for backbone in self.backbones():
            _fold_batchnorm(backbone, keep=None if backbone is self.query_encoder.backbone else backbone.stem_conv)
        self.to(memory_format=torch.channels_last)
        return self

    def backbones(self) -> list[nn.Module]:
        """The query encoder's backbone, and the memory encoder's where it has one."""
        return [encoder.backbone for encoder in (self.query_encoder, self.memory_encoder)
                if hasattr(encoder, "backbone")]

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters that are not the backbones' ImageNet weights (what a checkpoint ships)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(BACKBONE_PREFIXES)}

    def load_trained(self, state_dict: dict[str, torch.Tensor], source: str | Path) -> None:
        """Load the weights of the checkpoint ``source``; one without backbone weights keeps
        the ImageNet backbones. Weights of another network are the user's file, not a bug:
        an ``InputError`` naming ``source``."""
        ours = self.state_dict()
        resized = [k for k, v in state_dict.items() if k in ours and ours[k].shape != v.shape]
        if resized:
            raise InputError(f"{source} does not match the network: {resized[0]} is "
                             f"{tuple(state_dict[resized[0]].shape)}, the network's {tuple(ours[resized[0]].shape)}"
                             f" ({len(resized)} such weights)")
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if not k.startswith(BACKBONE_PREFIXES)]
        if missing or unexpected:
            raise InputError(f"{source} does not match the network: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")


def _per_sample(weight: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor | float:
    """A number as it is; (B,) weights shaped to scale a (B, C, H, W) tensor."""
    if not isinstance(weight, torch.Tensor):
        return weight
    return weight.to(like.dtype)[:, None, None, None]


def _fold_batchnorm(module: nn.Module, keep: Optional[nn.Module]) -> None:
    """Replace every (Conv2d, BatchNorm2d) pair registered one after the other in the same
    parent (how both backbones apply them: the norm directly on the conv's output) by the
    folded conv and an identity; ``keep`` is left alone."""
    for parent in list(module.modules()):
        names = list(parent._modules)
        for conv_name, bn_name in zip(names, names[1:]):
            conv, bn = parent._modules[conv_name], parent._modules[bn_name]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and conv is not keep
                    and conv.out_channels == bn.num_features):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
