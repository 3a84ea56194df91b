"""The tracker API every adapter calls: ``initialize(image, region)`` / ``track(image)``.

One frame (``step``): crop around the current estimate (segmentation crop and, when its
factor differs, the DCF crop), run the query encoder, locate the target with the spatial
memory (DCF), read the appearance memory, decode the mask, map it back to the frame, then
let the ``MemoryManager`` decide what the frame writes into both memories. ``step`` takes
any number of ``Target``s, each with its own image, memories and DCF, and runs the
network once for all of them (batched evaluation); ``initialize`` / ``track`` keep one.
Adapters build a tracker with ``samn_tracker.build_tracker``.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from samn_tracker import redetection, regions
from samn_tracker.config import TrackerConfig, preset, weights_mismatch
from samn_tracker.crops import CropWindow, crop_image, crop_mask, jittered_window, window_around
from samn_tracker.decoder_tuning import DecoderWeights, TuningViews, tune_decoders
from samn_tracker.device_components import MainComponents
from samn_tracker.batch_rows import grouped, in_order, take_rows
from samn_tracker.devices import pick_device, to_device, to_device_together
from samn_tracker.edge_snap import snap_to_edges
from samn_tracker.frame_ops import DeviceFrames, FrameMap, MapBuilder, Pasted, frame_ops, unit_float
from samn_tracker.front_pass import Front, SpatialOutput, front_pass, resampled_scores
from samn_tracker.errors import InputError
from samn_tracker.feature_grid import STRIDE, cell_to_pixel, gaussians, pixel_to_cell
from samn_tracker.memory_manager import Decision, MemoryManager
from samn_tracker.model.appearance_memory import AppearanceMemory, MemoryEntry, in_slots, slot_capacity
from samn_tracker.model.decoder import foreground_probability
from samn_tracker.model.encoders import QueryFeatures
from samn_tracker.model.graphs import BatchBuckets
from samn_tracker.config import PRECISIONS
from samn_tracker.model.network import SAMNNetwork
from samn_tracker.model.spatial_memory import SpatialMemory, augment_first_frame, refit_pass
from samn_tracker.stage_clock import StageClock
from samn_tracker.datasets import to_rgb
from samn_tracker.weights import builtin_checkpoint, load_checkpoint

STAGES = ("crop", "query_encoder", "dcf", "memory_read", "decoder", "memory_write", "postprocess")
# A step's host wall time: the launch (on a GPU: issuing its work), waiting for the
# read-back, the per-target host work (the map in its frame, mask, memory policy, boxes),
# the memory writes.
HOST_PARTS = ("launch", "read_back", "host_work", "writes")
MAX_AUTO_HOST_THREADS = 8
# Rows of a backbone pass over first-frame DCF crops (27 augmented copies per target).
DCF_INIT_ROWS = 8


def host_threads_for(setting: int, device: torch.device, cores: Optional[int] = None) -> int:
    """The ``host_threads`` setting resolved: a positive number as it is; 0 is 1 on a CPU and
    half the host's ``cores`` (``os.cpu_count()``), at most ``MAX_AUTO_HOST_THREADS``, beside a GPU."""
    if setting > 0:
        return setting
    if device.type != "cuda":
        return 1
    return max(1, min(MAX_AUTO_HOST_THREADS, (cores or os.cpu_count() or 2) // 2))


@dataclass
class Prediction:
    mask: np.ndarray          # bool HxW, full frame
    box: np.ndarray           # (4,) x, y, w, h
    confidence: float         # in [0, 1]: the DCF's peak response (without a DCF, the mask's
                              # mean probability), times mask_check.refused_confidence where the
                              # mask was refused; low when the target is lost or occluded
    uncertain: bool           # the frame was kept out of the memories
    frame_map: Optional[FrameMap] = field(default=None, repr=False, compare=False)
    # the foreground probability as pasted back (``probability`` makes its whole frame;
    # None with the ``probability_maps`` setting off)
    from_mask: bool = True    # the box is the mask's; False: the mask check refused the mask,
                              # and the box is the previous one, moved to the DCF's peak or
                              # left in place (mask_check.refused_box: a tuned target stays
                              # unless its mask is empty)
    rotated: Optional[Callable[[], Optional[np.ndarray]]] = field(default=None, repr=False, compare=False)
    # works out the mask's rotated rectangle (None: the box's corners are the polygon)

    @cached_property
    def probability(self) -> Optional[np.ndarray]:
        """float32 HxW foreground probability, made when first read: most runs keep only
        the mask and box, and for a small target in a large frame most of it is zeros."""
        return None if self.frame_map is None else self.frame_map.full()

    @cached_property
    def polygon(self) -> np.ndarray:
        """(4, 2) rotated rectangle: the mask's (``regions.mask_to_rotated_box``) when the box
        is the mask's, else the box's corners. Worked out when first read (VOT's polygon
        regions, ``samn track``'s polygons.txt): benchmarks that score boxes or masks, and
        the threads of a batched step, never pay for its contour."""
        polygon = self.rotated() if self.rotated is not None else None
        return regions.box_to_polygon(self.box) if polygon is None else polygon


class SAMNTracker:
    """Segmentation tracker with an appearance memory (AMN) and a spatial memory (SMN)."""

    def __init__(self, config: TrackerConfig | str = "lite", weights: str | Path | None = None,
                 device: str | torch.device = "auto", seed: int = 0, precision: str = "fp32"):
        self.cfg = preset(config) if isinstance(config, str) else config
        if precision not in PRECISIONS:
            raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        # numpy's generators take 0 .. 2**64 - 1 and torch's a Python int: checked here, not at
        # the first ``initialize``
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2 ** 64:
            raise InputError(f"seed {seed!r} is not an integer from 0 to 2**64 - 1")
        self.device = pick_device(device)
        self.seed = int(seed)
        checkpoint = None
        path = Path(weights) if weights is not None else builtin_checkpoint(self.cfg.name, self.cfg.model.memory_pass)
        if path is not None:
            checkpoint = load_checkpoint(path)
            self._check_model_config(checkpoint, path)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # untrained heads are the same for the same seed
            self.net = SAMNNetwork(self.cfg.model)
        if checkpoint is not None:
            self.net.load_trained(checkpoint["state_dict"], path)
        else:
            backbone = ("ImageNet backbones only" if self.cfg.model.pretrained_backbone
                        else "the backbone random too: model.pretrained_backbone=False")
            warnings.warn(f"no trained weights for preset {self.cfg.name!r}: the memory heads and "
                          f"decoder are untrained ({backbone}); masks are not meaningful", stacklevel=2)
        self.weights = path
        self.net.eval().to(self.device).prepare_for_inference(precision=precision)
        # whether the passes replay from CUDA graphs, each made on first use of its shape
        self.cuda_graphs = self.cfg.cuda_graphs and self.device.type == "cuda"
        if self.cuda_graphs:
            self.net.use_cuda_graphs()
        self.precision = precision
        self.frames = frame_ops(self.cfg.frame_ops, self.device)
        # the device keeps the masks' main components (``mask_components``), on CUDA from graphs
        self._components: Optional[MainComponents] = None
        if (self.cfg.mask_components == "device" and self.cfg.mask_min_component > 0
                and isinstance(self.frames, DeviceFrames)):
            self._components = MainComponents(self.cfg.mask_min_component, graphed=self.cuda_graphs)
        front = partial(front_pass, self.net.query_pass)
        self._front = BatchBuckets(front) if self.cuda_graphs else front  # with device frame operations
        self._refit = BatchBuckets(refit_pass) if self.cuda_graphs else None  # the DCF's refits
        # whether the device step reads capped memories at the most they hold (``slot_capacity``),
        # as its CUDA graphs need, or each batch at its longest memory's
        self.fixed_memory_sizes = self.cuda_graphs
        self.host_threads = host_threads_for(self.cfg.host_threads, self.device)
        # whether ``launch`` encodes every target's memory entry (``entries_at``)
        self.entries_at_launch = self.cfg.entries_at == "launch" or (
            self.cfg.entries_at == "auto" and self.device.type == "cuda")
        self._clock = StageClock(self.device, STAGES, HOST_PARTS)
        self._host_pool: Optional[ThreadPoolExecutor] = None
        self._target: Optional[Target] = None

    def _check_model_config(self, checkpoint: dict, path: Path) -> None:
        stored = (checkpoint.get("config") or {}).get("model")
        if stored is None:
            return
        diff = weights_mismatch(stored, self.cfg.to_dict()["model"])
        if diff:
            fix = " ".join(f"--set model.{k}={stored}" for k, (stored, _) in diff.items())
            raise InputError(f"weights {path} were trained for another model: {diff} "
                             f"(checkpoint, config); to use them: {fix}")

    # ------------------------------------------------------------------ API
    @property
    def timings(self) -> dict[str, float]:
        """Seconds per stage (``STAGES``) of the last ``start`` / ``step`` call (of the last
        ``finish``, with its ``launch``)."""
        return self._clock.times()

    @property
    def clock(self) -> StageClock:
        """The last call's stage clock, to read after more calls (``times()``, which waits
        for that call's device work, where ``timings`` would wait now)."""
        return self._clock

    @property
    def memory(self) -> Optional[MemoryManager]:
        """The current target's memories and their update policy (None before ``initialize``)."""
        return None if self._target is None else self._target.memory

    @property
    def memory_entries(self) -> int:
        """Frames in the appearance memory now (0 before ``initialize``)."""
        return 0 if self._target is None else len(self._target.memory)

    def initialize(self, image: np.ndarray, region) -> Prediction:
        """Start tracking the object given by a box (4,) x, y, w, h in pixels, a polygon
        (N, 2) / (2N,), or a mask (H x W, non-zero = object; H x W x 3 as read from a mask
        file). ``image``: **RGB** H x W x 3 uint8, as ``datasets.read_image`` gives (OpenCV's
        ``imread`` gives BGR: convert it); gray, RGBA, 16-bit and float [0, 1] arrays are
        converted (``datasets.to_rgb``). Every later frame must have this frame's size. One
        that fails leaves no target: ``track`` then refuses, not follows the earlier object."""
        self._target = None
        self._target, prediction = self.start(image, region)
        return prediction

    @property
    def target(self) -> Optional["Target"]:
        """The object ``initialize`` started and ``track`` follows: a plain object of tensors
        and arrays, so ``torch.save`` keeps it, and ``resume`` on a tracker built alike goes
        on from it (``samn track --resume``)."""
        return self._target

    def resume(self, target: "Target") -> None:
        """Follow ``target`` (a ``target`` saved after some frame) from its next frame on."""
        self._target = target

    def track(self, image: np.ndarray) -> Prediction:
        """The object in the next frame (RGB, as ``initialize``'s)."""
        if self._target is None:
            raise RuntimeError("track() called before initialize() (or after one that failed)")
        return self.step([self._target], [image])[0]

    def tunes(self, given_mask: bool) -> bool:
        """Whether ``start`` tunes a decoder for a target given by a mask, or (``given_mask``
        False) by a box or polygon: then only with ``tuning.from_box``. For a box ``start``
        also needs box-to-segmentation to refine it, which only ``start`` learns."""
        return self.cfg.tuning.steps > 0 and (given_mask or self.cfg.tuning.from_box)

    def start(self, image: np.ndarray, region) -> tuple["Target", Prediction]:
        """A new target from its first frame and region; ``step`` tracks it further."""
        return self.start_all([image], [region])[0]

    @torch.no_grad()
    def start_all(self, images: Sequence[np.ndarray], initial_regions: Sequence) -> list[tuple["Target", Prediction]]:
        """``start`` for several targets, each in its own image (a lockstep batch's new
        videos): their first-frame crops, box refinements and DCF fits each run once for all
        of them, so that a GPU issues a start's hundreds of small operations once per batch.
        A target's result does not depend on its batch-mates beyond float rounding (on a
        CPU, bit for bit its start alone: tested)."""
        if len(images) != len(initial_regions):
            raise ValueError(f"{len(images)} images but {len(initial_regions)} regions")
        self._clock = StageClock(self.device, STAGES, HOST_PARTS)
        if len(images) == 0:  # ``images`` may be one (N, H, W, 3) array
            return []
        images = [to_rgb(image, "initialisation image") for image in images]
        shapes = [image.shape[:2] for image in images]
        given = [self._initial_mask(region, shape) for region, shape in zip(initial_regions, shapes)]
        masks = [mask for mask, _ in given]
        boxes = [regions.mask_to_box(mask) if is_box else regions.solid_box(mask, self.cfg.initial_box_thin)
                 for mask, is_box in given]
        windows = [window_around(box, self.cfg.search_factor, self.cfg.crop_size) for box in boxes]
        loaded = [self.frames.load(image) for image in images]
        crops = torch.cat([self.frames.crop(frame, window) for frame, window in zip(loaded, windows)])
        query = self.net.encode_query(crops)
        first = self._first_entries(crops, query.s16, masks, windows, range(len(images)))
        targets = [Target(box=box.astype(np.float64), memory=MemoryManager(self.cfg, entry), shape=shape)
                   for box, entry, shape in zip(boxes, first, shapes)]

        segmented: list[Optional[np.ndarray]] = [None] * len(images)
        redone: list[int] = []
        if self.cfg.box_to_segmentation:
            from_box = [i for i, (_, is_box) in enumerate(given) if is_box]
            segmented = self._boxes_to_segmentation(targets, from_box, query, windows, boxes, shapes)
            redone = [i for i in from_box if segmented[i] is not None and self._fills_box(segmented[i], boxes[i])]
            for i in redone:
                masks[i] = segmented[i]
            for i, entry in zip(redone, self._first_entries(crops, query.s16, masks, windows, redone)):
                targets[i].memory.replace_first(entry)

        if self.cfg.use_dcf:
            self._init_dcfs(targets, images, boxes)
        tuned = [i for i, (_, is_box) in enumerate(given)
                 if self.tunes(given_mask=not is_box) and (not is_box or i in redone)]
        views = [self._tuning_views(loaded[i], masks[i], boxes[i], targets[i].memory) for i in tuned]
        for i, decoder in zip(tuned, tune_decoders(self.net.decoder, views, self.cfg.tuning, self.seed)):
            targets[i].decoder = decoder
        started = []
        for i, (mask, box) in enumerate(zip(masks, boxes)):
            # A box's segmentation, trusted or not, outlines the target better than the filled box
            # (on all 50 DAVIS 2016 sequences), so frame 0 shows it; its boxes stay those of ``mask``.
            shown = mask if segmented[i] is None else segmented[i]
            first_frame = self._prediction(mask, box, FrameMap(shown.astype(np.float32), 0, shown.shape),
                                           confidence=1.0, uncertain=False, mask_box=regions.mask_to_box(mask))
            started.append((targets[i], replace(first_frame, mask=shown)))
        return started

    def step(self, targets: Sequence["Target"], images: Sequence[np.ndarray]) -> list[Prediction]:
        """Track each target one frame further, in its own image (the same or different
        videos). Targets keep separate memories and DCFs; the encoders and the decoder run
        once on the whole batch, so a target's result does not depend on its batch-mates
        beyond float rounding. ``timings`` hold the whole batch's stage times."""
        if len(targets) == 0 and len(images) == 0:  # ``images`` may be one (N, H, W, 3) array
            return []
        return self.finish(self.launch(targets, images))

    @torch.no_grad()
    def launch(self, targets: Sequence["Target"], images: Sequence[np.ndarray]) -> "Launched":
        """The first half of ``step``: crops, query encoder, DCF scores, the targets' DCF samples
        of their last frame (``_learn``), memory read, decoder and paste-back issued, and their
        read-back queued. On a GPU it returns without waiting for any of it, so a second group
        of targets can be launched before this one is finished: the host work of one group
        then overlaps the device work of the other (``track_lockstep(..., groups=2)``).
        ``finish`` completes it; a target may be in one launched step at a time."""
        if len(targets) != len(images):
            raise ValueError(f"{len(targets)} targets but {len(images)} images")
        if len({id(target) for target in targets}) < len(targets):
            raise ValueError("a target is twice in one step: each steps through its own video, a frame at a time")
        self._clock = StageClock(self.device, STAGES, HOST_PARTS)
        with self._clock.host("launch"):
            return self._issue(targets, images)

    def _issue(self, targets: Sequence["Target"], images: Sequence[np.ndarray]) -> "Launched":
        """``launch``'s work, on the clock it made."""
        frames = [to_rgb(image, f"frame {target.frame + 1}") for target, image in zip(targets, images)]
        for target, frame in zip(targets, frames):
            if frame.shape[:2] != target.shape:
                raise InputError(f"frame {target.frame + 1} is {frame.shape[1]}x{frame.shape[0]}, the target's "
                                 f"first frame {target.shape[1]}x{target.shape[0]}: a video's frames share one size")
        for target in targets:
            target.frame += 1
        if isinstance(self.frames, DeviceFrames):
            with self._clock.stage("query_encoder"):
                batch, spatial, located = self._front_step(targets, frames)
        else:
            batch = self._encode(targets, frames)
            spatial, located = self._locate(targets, batch)
        with self._clock.stage("dcf"):
            self._learn(targets)  # the last frame's samples, behind this frame's scores
        read_weight = None if self.cfg.memory.read else 0.0
        memories = [target.memory.appearance for target in targets]
        if self._in_one_pass(targets):
            with self._clock.stage("decoder"):
                crop_prob = self._mask_probability(memories, batch.query, spatial, read_weight)
        else:
            with self._clock.stage("memory_read"):
                readout = self.net.read_each(batch.query, memories, read_weight)
            with self._clock.stage("decoder"):
                crop_prob = foreground_probability(self._decode(targets, readout, batch.query, spatial))
        with self._clock.stage("postprocess"):
            pasted = self.frames.to_frames(crop_prob[:, 0], [w[0] for w in batch.windows],
                                           [image.shape[:2] for image in frames],
                                           () if located is None else (located,), self.cfg.mask_threshold,
                                           values=self.cfg.probability_maps or not self.cfg.use_dcf,
                                           components=self._components)
        encoded = None
        if self.entries_at_launch:  # queued after the read-back, which it must not delay
            with self._clock.stage("memory_write"):
                encoded = self._memory_pass(batch.seg_crops, crop_prob, batch.query.s16)
        return Launched(list(targets), frames, batch, crop_prob, encoded, pasted, self._clock)

    @torch.no_grad()
    def finish(self, launched: "Launched") -> list[Prediction]:
        """The second half of ``step``: waits for the launched step's read-back, does each
        target's host work (map, mask, memory policy, box) and issues the memory writes (a
        DCF sample waits for the target's next launch, unless its filter's refit falls due)."""
        self._clock = launched.clock
        targets, batch = launched.targets, launched.batch
        with self._clock.stage("postprocess"):
            with self._clock.host("read_back"):
                probs, peaks, centres = self._landed(launched.pasted, batch)
            with self._clock.host("host_work"):
                finished = self._on_host(self._finish, targets, launched.frames, probs, peaks, centres)
        with self._clock.host("writes"):
            self._write(targets, [decision for decision, _ in finished], launched)
        for target, frame in zip(targets, launched.frames):
            if redetection.due(target.lost, self.cfg.redetection):
                self._redetect(target, frame)
        return [prediction for _, prediction in finished]

    # ------------------------------------------------------------ internals
    def _front_step(self, targets: Sequence["Target"], frames: list[np.ndarray]
                    ) -> tuple["_Batch", torch.Tensor, Optional[torch.Tensor]]:
        """``_encode`` and ``_locate`` with device frame operations: one ``front_pass`` per
        frame size (one CUDA graph replay on a GPU), its host numbers sent in one copy."""
        cfg = self.cfg
        windows = [self._windows(target.box) for target in targets]
        per_target = len(windows[0])
        spatial: SpatialOutput = "none"
        if cfg.use_dcf and cfg.spatial_map == "dcf":
            spatial = "resampled" if per_target > 1 else "same"
        groups = grouped(image.shape for image in frames)
        parts = []
        for members in groups:
            group = [windows[i] for i in members]
            shape = frames[members[0]].shape[:2]
            crop_axes = DeviceFrames.crop_axes([w for each in group for w in each], shape)
            crop_axes = crop_axes.reshape(len(group), per_target, *crop_axes.shape[1:])    # (n, k, 2, S)
            spatial_axes = self._resample_axes(group) if spatial == "resampled" else crop_axes[:, 0, :, :0]
            crop_axes, spatial_axes = to_device_together([crop_axes, spatial_axes], self.device)
            scorers = SpatialMemory.scorers([targets[i].dcf for i in members]) if cfg.use_dcf else spatial_axes
            parts.append(self._front(DeviceFrames.upload([frames[i] for i in members], self.device), crop_axes,
                                     scorers, spatial_axes, dcf=cfg.use_dcf, spatial=spatial))
        front = Front.of(tuple(in_order([part[j] for part in parts], groups) for j in range(len(parts[0]))),
                         cfg.use_dcf, spatial)
        batch = _Batch(windows, front.seg_crops, front.query, front.dcf_features)
        if front.spatial is None:
            return batch, self._spatial_without_dcf(targets, windows), front.peaks
        return batch, front.spatial, front.peaks

    def _encode(self, targets: Sequence["Target"], frames: list[np.ndarray]) -> "_Batch":
        """Crop every target's search region(s) and run the query encoder once on all."""
        with self._clock.stage("crop"):
            windows = [self._windows(target.box) for target in targets]
            crops = self.frames.crops(frames, windows)
        per_target = len(windows[0])
        with self._clock.stage("query_encoder"):
            features = self.net.encode_query(crops)
        return _Batch(windows, crops[::per_target], features.every(per_target),
                      features.s16[per_target - 1::per_target])

    def _locate(self, targets: Sequence["Target"], batch: "_Batch") -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The spatial maps for the decoder, and every target's DCF peak values (B, 6), read
        back later with the masks (nothing here waits for the device). All targets' DCF
        responses come from one batched product."""
        with self._clock.stage("dcf"):
            responses = located = None
            if self.cfg.use_dcf:  # every target has a DCF then (``start``)
                responses = SpatialMemory.responses([t.dcf for t in targets], batch.dcf_features)
                located = SpatialMemory.peak_values(responses)
            if responses is not None and self.cfg.spatial_map == "dcf":
                separate = batch.windows[0][0] != batch.windows[0][-1]
                axes = self._resample_axes(batch.windows) if separate else None
                return resampled_scores(responses, None if axes is None else to_device(
                    torch.from_numpy(axes), responses.device)), located
            return self._spatial_without_dcf(targets, batch.windows), located

    def _spatial_without_dcf(self, targets: Sequence["Target"], windows: Sequence[Sequence[CropWindow]]) -> torch.Tensor:
        """The decoder's spatial map where it is not the DCF's: the distance map (authors'
        code), or zeros (``spatial_map="none"``)."""
        spatial = torch.cat([self._distance_map(target.box, group[0]) for target, group in zip(targets, windows)])
        return torch.zeros_like(spatial) if self.cfg.spatial_map == "none" else spatial

    def _in_one_pass(self, targets: Sequence["Target"]) -> bool:
        """Whether the step reads the memories and decodes in one pass (``_mask_probability``):
        with device frame operations, the shared decoder and capped memories. An uncapped
        memory (the paper's policy) is read at its own size and then decoded: padded to a
        few sizes for a graph, its read did up to twice its work, and `paper` at batch 1 was
        slower on the H100 that way (docs/bench.md, 2026-11-27)."""
        return (isinstance(self.frames, DeviceFrames) and self.cfg.memory.max_entries is not None
                and all(target.decoder is None for target in targets))

    def _mask_probability(self, memories: Sequence[AppearanceMemory], query: QueryFeatures, spatial: torch.Tensor,
                          read_weight: Optional[float]) -> torch.Tensor:
        """The device step's memory read and decoder as one pass (``SAMNNetwork.mask_probability``),
        every memory laid out in slots of one size (``slot_capacity``): with CUDA graphs the
        most a memory can hold, so that the pass replays from one graph as the memories grow;
        without them the longest memory's (a target alone reads exactly its entries)."""
        keys, values, valid = in_slots(memories, slot_capacity(memories, fixed=self.fixed_memory_sizes))
        return self.net.mask_probability(query, spatial, keys, values, valid, self.cfg.crop_size, read_weight)

    def _decode(self, targets: Sequence["Target"], readout: torch.Tensor, query: QueryFeatures,
                spatial: torch.Tensor) -> torch.Tensor:
        """The shared decoder once for the batch, or each target's tuned decoder on its row."""
        size = self.cfg.crop_size
        if all(target.decoder is None for target in targets):
            return self.net.decode(readout, query, spatial, size)
        return self.net.decode_each(readout, query, spatial, size, [target.decoder for target in targets])

    def _tuning_views(self, loaded, mask: np.ndarray, box: np.ndarray, memory: MemoryManager) -> TuningViews:
        """What a target's decoder is tuned on: crops of its first frame, placed as later
        crops will be, each read from the first frame's memory."""
        cfg = self.cfg.tuning
        rng = np.random.default_rng([self.seed, 1])
        windows = [window_around(box, self.cfg.search_factor, self.cfg.crop_size)]
        windows += [jittered_window(box, self.cfg.search_factor, self.cfg.crop_size, rng,
                                    cfg.centre_jitter, cfg.scale_jitter) for _ in range(cfg.views - 1)]
        crops = torch.cat([self.frames.crop(loaded, w) for w in windows])
        masks = torch.from_numpy(np.stack([crop_mask(mask, w) >= 0.5 for w in windows])).float()[:, None]
        maps = torch.cat([self._distance_map(box, w) for w in windows])
        masks = masks.to(self.device)
        if cfg.flip:
            for tensor in (crops, masks, maps):
                tensor[1::2] = tensor[1::2].flip(-1)
        query = self.net.encode_query(crops)
        keys, values = memory.read()
        readout = self.net.read(query, keys.expand(cfg.views, -1, -1), values.expand(cfg.views, -1, -1))
        return TuningViews(readout=readout, spatial_map=maps, s8=query.s8, s4=query.s4, masks=masks)

    def _landed(self, pasted: Pasted, batch: "_Batch") -> tuple[list, list, list]:
        """The one read-back: what builds each full-frame probability (``_finish`` does, on
        its target's thread), DCF peaks and their frame points."""
        probs, peak_values = pasted.wait_each()
        peaks, centres = [0.0] * len(probs), [None] * len(probs)
        for i, values in enumerate(peak_values[0] if peak_values else ()):
            cx, cy, peaks[i] = SpatialMemory.locate_values(values, batch.dcf_features.shape[2:])
            centres[i] = batch.windows[i][-1].to_frame(cell_to_pixel(cx), cell_to_pixel(cy))
        return probs, peaks, centres

    def _on_host(self, work: Callable, *per_target: Sequence) -> list:
        """``work`` for each target; with ``host_threads`` > 1 a batch's targets in parallel
        threads (the host work of a target touches only that target): by default beside a
        GPU, whose host has idle cores, not on a CPU, where it made this work slower."""
        threads = self.host_threads
        if len(per_target[0]) <= 1 or threads <= 1:
            return list(map(work, *per_target))
        if self._host_pool is None:
            self._host_pool = ThreadPoolExecutor(threads, thread_name_prefix="samn-host")
        return list(self._host_pool.map(work, *per_target))

    def _finish(self, target: "Target", image: np.ndarray, build_prob: MapBuilder, peak: float,
                centre: Optional[tuple[float, float]]) -> tuple[Decision, Prediction]:
        """One target's frame after the read-back: its probability map in its frame, its
        mask, the memory policy's decision, the new box and the prediction, whose mask is
        snapped to ``image``'s edges (``EdgeConfig``). The mask's box and centroid come from
        its row and column counts, made by the device with device frame operations, else by
        one pass here."""
        prob = build_prob()
        mask = prob.above(self.cfg.mask_threshold)
        counts = prob.counts_above(self.cfg.mask_threshold)
        if self.cfg.mask_min_component > 0 and not prob.components_kept(self.cfg.mask_threshold):
            mask, counts = regions.main_components(mask, self.cfg.mask_min_component, prob.footprint, counts)
        elif counts is None:
            counts = regions.MaskCounts.of(mask, prob.footprint)
        mask_box = counts.box
        decision = target.memory.decide(target.frame, peak, counts, target.box, centre,
                                        tuned_decoder=target.decoder is not None)
        target.box = self._next_box(target, mask_box if decision.trusted else None, decision.moved_to)
        target.lost = target.lost + 1 if self._lost(target, decision, peak) else 0
        confidence = self._confidence(peak, mask, prob)
        if not decision.trusted:
            confidence *= self.cfg.mask_check.refused_confidence
        if self.cfg.edges.radius > 0:
            mask, counts = snap_to_edges(image, mask, counts, self.cfg.edges)
        prediction = self._prediction(mask, target.box, prob, confidence, decision.uncertain,
                                      counts.box if decision.trusted else None)
        return decision, prediction

    def _write(self, targets: Sequence["Target"], decisions: list, launched: "Launched") -> None:
        """What the memory manager decided: appearance entries (encoded at launch, or now by
        one memory-encoder pass for every target that writes), then DCF samples, each left on
        its target for the next launch (``_learn``) unless its refit falls due now."""
        batch = launched.batch
        writers = [i for i, d in enumerate(decisions) if not d.uncertain and d.appearance is not None]
        if writers:
            with self._clock.stage("memory_write"):
                rows, encoded = writers, launched.encoded
                if encoded is None:
                    rows = range(len(writers))
                    encoded = self._memory_pass(take_rows(batch.seg_crops, writers),
                                                take_rows(launched.crop_prob, writers),
                                                take_rows(batch.query.s16, writers))
                entries = self._entry_rows(encoded, rows, [targets[i].frame for i in writers],
                                           [decisions[i].appearance == "sampled" for i in writers])
                for i, entry in zip(writers, entries):
                    targets[i].memory.memorise(entry, decisions[i].appearance)
        with self._clock.stage("dcf"):
            refitting = []
            for i, (target, decision) in enumerate(zip(targets, decisions)):
                if decision.uncertain or target.dcf is None or decision.dcf_label is None:
                    continue
                window = batch.windows[i][-1]
                lx, ly = window.to_crop(*decision.dcf_label)
                target.sample = DcfSample(batch.dcf_features, i, (pixel_to_cell(lx), pixel_to_cell(ly)),
                                          self._size_in_cells(window, target.box))
                if target.dcf.refit_due:  # the next frame's scores need the refitted filter
                    refitting.append(target)
            self._learn(refitting)

    def _learn(self, targets: Sequence["Target"]) -> None:
        """Store the waiting DCF samples of those of ``targets`` that have one (one batched
        projection), and refit the filters that fall due (one batched solve). A tracked frame's
        sample waits for its target's next launch, issued after that frame's DCF scores, which
        read the filter alone: at batch 1 the device then runs the next front pass while the
        host issues the sample, where it used to wait for the host. A sample whose step refits
        the filter is stored at once (``_write``): the next scores need that filter."""
        learners = [target for target in targets if target.sample is not None]
        if not learners:
            return
        samples = [target.sample for target in learners]
        SpatialMemory.add_samples([target.dcf for target in learners], DcfSample.features_of(samples),
                                  [sample.centre for sample in samples], [sample.size for sample in samples])
        SpatialMemory.step_all([target.dcf for target in learners], self._refit)
        for target in learners:
            target.sample = None

    def _lost(self, target: "Target", decision: Decision, peak: float) -> bool:
        """Whether a frame counts towards a search beyond the search region (``redetection``):
        its mask refused or kept out of the memories, and the DCF's peak under ``min_peak`` x
        the target's mean accepted peak, so that the DCF does not see the target here either."""
        cfg = self.cfg.redetection
        if not cfg.after or (decision.trusted and not decision.uncertain) or not target.memory.peaks:
            return False
        return peak < cfg.min_peak * target.memory.mean_peak()

    def _redetect(self, target: "Target", image: np.ndarray) -> None:
        """A lost target looked for with its DCF over the frame (``redetection``); its box
        moves to the best peak found there when that is strong enough and elsewhere."""
        if target.dcf is None or not target.memory.peaks:
            return
        with self._clock.stage("dcf"):
            cfg = self.cfg.redetection
            windows = redetection.search_windows(self._windows(target.box)[-1], target.shape, cfg.max_windows,
                                                 redetection.turn(target.lost, cfg))
            loaded = self.frames.load(image)
            features = self.net.encode_query(torch.cat([self.frames.crop(loaded, w) for w in windows])).s16
            values = SpatialMemory.peak_values(SpatialMemory.responses([target.dcf] * len(windows), features)).cpu()
            found = []
            for window, row in zip(windows, values):
                cx, cy, peak = SpatialMemory.locate_values(row, features.shape[2:])
                found.append((peak, window.to_frame(cell_to_pixel(cx), cell_to_pixel(cy))))
            peak, centre = max(found, key=lambda item: item[0])
            moved = redetection.moved_box(target.box, centre, peak, target.memory.mean_peak(), cfg)
            if moved is not None:
                target.box = moved

    def _confidence(self, peak: float, mask: np.ndarray, prob: FrameMap) -> float:
        """The DCF's peak (clipped to [0, 1]), or without a DCF the mask's mean probability."""
        if self.cfg.use_dcf:
            return min(max(float(peak), 0.0), 1.0)
        return prob.mean_where(mask) if mask.any() else 0.0

    def _initial_mask(self, region, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
        if isinstance(region, (str, bytes)):
            raise InputError(f"initial region {region!r} is text: give numbers (a box array x, y, w, h, "
                             "a polygon) or a mask array")
        try:
            arr = np.asarray(region)
        except ValueError:  # nested lists of unequal lengths
            arr = np.asarray(None)
        if arr.dtype == object:
            raise InputError(f"initial region {region!r} is neither a box, a polygon nor a mask")
        if regions.is_mask(arr):
            if arr.shape[:2] != shape or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
                raise InputError(f"initial mask has shape {arr.shape}, the image is {shape}")
            if arr.dtype.kind == "f" and np.isnan(arr).any():  # NaN is non-zero: it read as object
                raise InputError(f"initial mask has {int(np.isnan(arr).sum())} NaN values: give 0 for the "
                                 "background and non-zero for the object")
            mask = regions.mask_pixels(arr)
            if not mask.any():
                raise InputError("initial mask is empty")
            return mask, False
        if arr.shape == (2, 2):  # two corners, not x, y, w, h: read as a box, they gave another box
            raise InputError(f"initial region {arr.tolist()} is 2 points: a polygon needs at least 3, and a box "
                             "is 4 numbers x, y, w, h (a width and height, not a second corner)")
        arr = arr.astype(np.float64).reshape(-1)
        if arr.size == 4:
            box = regions.check_box(arr, shape, name="initial box")
            mask = regions.box_to_mask(box, shape)
            if not mask.any():
                raise InputError(f"initial box {box.tolist()} covers no pixel of the image")
            return mask, True
        if arr.size < 6 or arr.size % 2:
            raise InputError(f"initial region {region!r} is neither a box, a polygon nor a mask")
        polygon = regions.check_polygon(arr, shape, name="initial polygon")
        mask = regions.polygon_to_mask(polygon, shape)
        if not mask.any():
            raise InputError(f"initial polygon {polygon.tolist()} covers no pixel of the image")
        return mask, True

    def _windows(self, box: np.ndarray) -> list[CropWindow]:
        """The segmentation crop, and the DCF crop when its factor differs."""
        cfg = self.cfg
        windows = [window_around(box, cfg.search_factor, cfg.crop_size)]
        if cfg.use_dcf and cfg.dcf_search_factor != cfg.search_factor:
            windows.append(window_around(box, cfg.dcf_search_factor, cfg.crop_size))
        return windows

    def _memory_pass(self, crops: torch.Tensor, foreground: torch.Tensor,
                     s16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory keys (B, dk, P) and values (B, dv, P) of crops (B, 3, S, S) with their
        foreground (B, 1, S, S), one pass (``s16``: the crops' query-encoder backbone
        features, the keys of ``key_source="backbone"`` and what ``memory_pass="query"``
        encodes instead of the crops)."""
        keys, values = self.net.encode_memory(crops, foreground, s16)
        return self.net.memory_key(keys, s16).flatten(2), values.flatten(2)

    @staticmethod
    def _entry_rows(encoded: tuple[torch.Tensor, torch.Tensor], rows: Sequence[int], frames: Sequence[int],
                    lasting: Sequence[bool]) -> list[MemoryEntry]:
        """The entries of ``rows`` of a ``_memory_pass``. Of a pass over several crops, the
        ``lasting`` entries (sampled ones, kept for the video) are copies, so that they do not
        keep their batch-mates' features alive; the others (last-frame entries, replaced at
        the next write) stay views of the pass's output."""
        keys, values = encoded
        copied = keys.shape[0] > 1
        return [MemoryEntry(keys[i].clone(), values[i].clone(), frame) if keep and copied
                else MemoryEntry(keys[i], values[i], frame) for i, frame, keep in zip(rows, frames, lasting)]

    def _first_entries(self, crops: torch.Tensor, s16: torch.Tensor, masks: Sequence[np.ndarray],
                       windows: Sequence[CropWindow], rows: Sequence[int]) -> list[MemoryEntry]:
        """The first-frame memory entries of targets ``rows``, each encoded on its own: a
        tuned decoder learns from it and magnifies rounding (a memory pass of several crops
        rounds unlike one crop's), so a target started with others gets the entry it gets alone."""
        entries = []
        for i in rows:
            foreground = to_device(torch.from_numpy(crop_mask(masks[i], windows[i]))[None, None], self.device)
            encoded = self._memory_pass(crops[i:i + 1], foreground, s16[i:i + 1])
            entries += self._entry_rows(encoded, [0], [0], [True])
        return entries

    def _boxes_to_segmentation(self, targets: Sequence["Target"], rows: Sequence[int], query: QueryFeatures,
                               windows: Sequence[CropWindow], boxes: Sequence[np.ndarray],
                               shapes: Sequence[tuple[int, int]]) -> list[Optional[np.ndarray]]:
        """The first frames of the targets in ``rows`` segmented from their box memories, in
        one pass; each result kept inside a dilated box (None where it is empty, and outside
        ``rows``)."""
        segmented: list[Optional[np.ndarray]] = [None] * len(targets)
        if not rows:
            return segmented
        picked = query.rows(rows)
        readout = self.net.read_each(picked, [targets[i].memory.appearance for i in rows])
        maps = torch.cat([self._distance_map(boxes[i], windows[i]) for i in rows])
        logits = self.net.decode(readout, picked, maps, self.cfg.crop_size)
        builders, _ = self.frames.to_frames(foreground_probability(logits)[:, 0], [windows[i] for i in rows],
                                            [shapes[i] for i in rows]).wait_each()
        d = self.cfg.box_init_dilation
        for i, build in zip(rows, builders):
            x, y, w, h = boxes[i]
            grown = np.array([x - d * w / 2, y - d * h / 2, w * (1 + d), h * (1 + d)])
            mask = build().above(self.cfg.mask_threshold) & regions.box_to_mask(grown, shapes[i])
            if mask.any():
                segmented[i] = mask
        return segmented

    def _fills_box(self, mask: np.ndarray, box: np.ndarray) -> bool:
        """Whether a box's segmentation is trusted: one that fills little of the box is
        taken for a failure of the network, and its memory and tuning keep the box."""
        return mask.sum() >= self.cfg.box_init_min_fill * box[2] * box[3]

    def _init_dcfs(self, targets: Sequence["Target"], images: Sequence[np.ndarray],
                   boxes: Sequence[np.ndarray]) -> None:
        """Each target's DCF, fitted on augmented copies of its first DCF crop: every copy of
        every target through the query encoder's backbone in passes of ``DCF_INIT_ROWS``, and
        one batched fit (``SpatialMemory.initialize_all``)."""
        cfg = self.cfg
        windows = [window_around(box, cfg.dcf_search_factor, cfg.crop_size) for box in boxes]
        half = (cfg.crop_size - 1) / 2.0
        crops, centres = [], []
        for image, window in zip(images, windows):
            crop = crop_image(image, window)
            if cfg.dcf.augment:
                copies, where = augment_first_frame(crop, (half, half), np.random.default_rng(self.seed))
            else:
                copies, where = [crop], [(half, half)]
            crops += copies
            centres += where
        # one upload; from pageable memory, since a start waits for its device work anyway and
        # a batch's crops (tens of MB) would stay in the page-locked allocator's cache
        batch = unit_float(torch.from_numpy(np.stack(crops)).to(self.device))
        feats = torch.cat([self.net.encode_backbone(batch[i:i + DCF_INIT_ROWS])
                           for i in range(0, len(batch), DCF_INIT_ROWS)])
        cells = torch.tensor([[pixel_to_cell(u), pixel_to_cell(v)] for u, v in centres],
                             dtype=torch.float32, device=self.device)
        dcfs = [SpatialMemory(cfg.dcf, feats.shape[1], generator=torch.Generator().manual_seed(self.seed))
                for _ in targets]
        SpatialMemory.initialize_all(dcfs, feats.view(len(targets), -1, *feats.shape[1:]),
                                     cells.view(len(targets), -1, 2),
                                     [self._size_in_cells(w, box) for w, box in zip(windows, boxes)])
        for target, dcf in zip(targets, dcfs):
            target.dcf = dcf

    @staticmethod
    def _size_in_cells(window: CropWindow, box: np.ndarray) -> tuple[float, float]:
        return (max(box[2] * window.scale / STRIDE, 1e-3), max(box[3] * window.scale / STRIDE, 1e-3))

    def _resample_axes(self, windows: Sequence[Sequence[CropWindow]]) -> np.ndarray:
        """(B, 2, S16) float32: where the segmentation crop's grid cells (columns, then rows)
        lie on the DCF crop's grid, in ``grid_sample``'s [-1, 1] (``resampled_scores``), for
        targets with a DCF crop of their own."""
        def source_cells(group: Sequence[CropWindow], j: float) -> tuple[float, float]:
            """Where cell (j, j) of the segmentation crop lies on the DCF crop's grid, (x, y)."""
            u = cell_to_pixel(j)
            x, y = group[-1].to_crop(*group[0].to_frame(u, u))
            return pixel_to_cell(x), pixel_to_cell(y)

        n = self.cfg.crop_size // STRIDE  # both grids' cells per side
        offsets = np.array([source_cells(group, 0.0) for group in windows])       # (B, 2), float64
        steps = np.array([source_cells(group, 1.0) for group in windows]) - offsets
        offsets, steps = (v.astype(np.float32)[:, :, None] for v in (offsets, steps))
        return (offsets + steps * np.arange(n, dtype=np.float32)) / (n - 1) * 2 - 1

    def _distance_map(self, box: np.ndarray, window: CropWindow) -> torch.Tensor:
        """Gaussian around the box centre: the spatial map without a DCF (authors' code)."""
        w, h = box[2], box[3]
        u, v = window.to_crop(*regions.box_centre(box))
        sigma = self.cfg.dcf.sigma_factor
        size = (max(w * window.scale / STRIDE * sigma, 0.5), max(h * window.scale / STRIDE * sigma, 0.5))
        cells = torch.arange(self.cfg.crop_size // STRIDE, device=self.device, dtype=torch.float32)
        return gaussians(cells, cells, pixel_to_cell(u), pixel_to_cell(v), *size)[None]

    def _next_box(self, target: "Target", mask_box: Optional[np.ndarray], moved_to) -> np.ndarray:
        """The target box after this frame: the box of a usable mask (size smoothed), or the
        previous box moved to ``moved_to`` (None: left where it was) when there is none."""
        x, y, w, h = target.box
        if mask_box is None:
            if moved_to is None:
                return target.box
            cx, cy = moved_to
            return np.array([cx - (w - 1) / 2.0, cy - (h - 1) / 2.0, w, h])
        box = mask_box
        r = self.cfg.size_update_rate
        nw, nh = (1 - r) * w + r * box[2], (1 - r) * h + r * box[3]
        bx, by = regions.box_centre(box)
        return np.array([bx - (nw - 1) / 2.0, by - (nh - 1) / 2.0, nw, nh])

    def _prediction(self, mask: np.ndarray, state_box: np.ndarray, prob: FrameMap,
                    confidence: float, uncertain: bool, mask_box: Optional[np.ndarray]) -> Prediction:
        """The box from the mask (``mask_box``: its box when the mask is trusted), or from the
        tracker's state when it is not; the mask's rotated box is worked out when read."""
        rotated = None
        if mask_box is None:
            box = np.asarray(state_box, dtype=np.float64)
        else:
            box = mask_box
            rotated = partial(regions.mask_to_rotated_box, mask, fit=self.cfg.rotated_box_fit,
                              keep=self.cfg.rotated_box_keep, box=mask_box)
        return Prediction(mask=mask, box=box, confidence=confidence, uncertain=uncertain,
                          frame_map=prob if self.cfg.probability_maps else None,
                          from_mask=mask_box is not None, rotated=rotated)


@dataclass
class _Batch:
    """One step's crops and query features for all its targets."""

    windows: list[list[CropWindow]]  # per target: segmentation crop (and DCF crop)
    seg_crops: torch.Tensor          # (B, 3, S, S)
    query: QueryFeatures             # of the segmentation crops
    dcf_features: torch.Tensor       # (B, C, H16, W16) of the DCF crops


@dataclass
class Launched:
    """A step between ``launch`` and ``finish``: its targets, what ``finish`` still needs of
    the device work, and its stage clock."""

    targets: list["Target"]
    frames: list[np.ndarray]  # the targets' images: ``EdgeConfig`` snaps the masks to them
    batch: _Batch
    crop_prob: torch.Tensor  # (B, 1, S, S): the memory writes' masks
    encoded: Optional[tuple[torch.Tensor, torch.Tensor]]  # every target's entry (``entries_at``)
    pasted: Pasted
    clock: StageClock


@dataclass
class Target:
    """One tracked object: where it is, its two memories, its decoder when tuned, and how
    many frames it has seen."""

    box: np.ndarray
    memory: MemoryManager
    shape: tuple[int, int]                     # (H, W) of its frames
    dcf: Optional[SpatialMemory] = None
    frame: int = 0
    lost: int = 0                               # frames in a row it seems lost in (``_lost``)
    decoder: Optional[DecoderWeights] = None  # tuned on the first frame (``TuningConfig``)
    sample: Optional["DcfSample"] = None       # its last frame's DCF sample, not yet stored (``_learn``)


@dataclass
class DcfSample:
    """A tracked frame's DCF sample on its way to the target's DCF: row ``row`` of its
    step's DCF features, labelled at ``centre`` for a target ``size`` (both in cells)."""

    features: torch.Tensor  # (B, C, H, W), the step's
    row: int
    centre: tuple[float, float]
    size: tuple[float, float]

    @staticmethod
    def features_of(samples: Sequence["DcfSample"]) -> torch.Tensor:
        """(n, C, H, W): the samples' feature rows, taken from their step's features at once
        where they share one step (all of it, in order: no copy)."""
        step = samples[0].features
        if all(sample.features is step for sample in samples):
            return take_rows(step, [sample.row for sample in samples])
        return torch.cat([sample.features[sample.row:sample.row + 1] for sample in samples])
