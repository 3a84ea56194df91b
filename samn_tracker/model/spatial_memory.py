"""Spatial memory (SMN): an online discriminative correlation filter, ATOM-style.

Features x (C channels, stride 16) are compressed by a 1x1 projection P to ``proj_dim``
channels and correlated with a ``k x k`` filter f. On the first frame P and f are fitted
jointly by Gauss-Newton on

    sum_k w_k ||f * (P x_k) - y_k||^2 + reg_filter ||f||^2 + reg_proj ||P||^2,

each Gauss-Newton system solved by conjugate gradient, with the Jacobian products from
torch autograd (backward for ``J^T u``, double backward for ``J v``). P is then frozen,
samples are kept projected, and f is refined by one Gauss-Newton step of a few CG
iterations every ``update_interval`` frames. With P frozen the objective is quadratic in
f, so the refit (``refit_filters``) applies its normal matrix directly, the filter and its
adjoint, rather than through autograd's recorded graph.

Nothing in a tracked frame waits for the device: the response and its peak stay there
(``peak_values`` gathers the five numbers ``locate_values`` needs, read back with the
frame's other outputs), the sample weights are bookkeeping kept on the host, and the
solver picks its step length with tensor ops instead of comparing Python floats.

The response grid equals the feature grid: the filter is applied after padding
``k // 2`` cells before and ``(k - 1) // 2`` after, so output cell (i, j) sums
``f[:, a, b] * z[:, i + a - k // 2, j + b - k // 2]``. Labels live on that same grid,
which is why an even kernel still puts the peak on the target cell.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from samn_tracker.config import DCF_AUGMENTED_SAMPLES, DCFConfig
from samn_tracker.devices import to_device
from samn_tracker.feature_grid import gaussians

Params = tuple[Tensor, ...]
# ``refit_pass`` or a runner of it with the same call (a CUDA graph: ``model/graphs.py``)
Solve = Callable[..., tuple[Tensor]]

# ATOM keeps the first-frame samples at no less than this share of the total weight,
# so the filter never forgets the only verified appearance of the target.
INIT_WEIGHT_FLOOR = 0.25
# Gauss-Newton steps that raise the objective are halved at most this many times.
MAX_STEP_HALVINGS = 4
# Narrower labels would vanish between cells for tiny targets.
MIN_LABEL_SIGMA = 0.25
_TINY = 1e-30


def gaussian_labels(centers: Tensor | np.ndarray, sigma: float | Tensor | np.ndarray,
                    size: tuple[int, int]) -> Tensor | np.ndarray:
    """(N, H, W) Gaussians of peak 1 at ``centers`` given as (x, y) in cells, (N, 2): a
    tensor (labels on its device), or a float32 array (labels drawn on the host in numpy,
    as a tracked frame's are, then sent with one copy). ``sigma``: one width, or (N, 1)
    widths of the centres' kind."""
    if isinstance(centers, Tensor):
        ys, xs = (torch.arange(n, dtype=torch.float32, device=centers.device) for n in size)
    else:
        ys, xs = (np.arange(n, dtype=np.float32) for n in size)
    return gaussians(xs, ys, centers[:, 0:1], centers[:, 1:2], sigma, sigma)


def _host_labels(centers: Sequence[tuple[float, float]], sigmas: Sequence[float], size: tuple[int, int],
                 device: torch.device) -> Tensor:
    """(N, H, W) tracked frames' labels (``gaussian_labels``) drawn on the host and sent to
    ``device`` in one copy that does not wait for it."""
    centres = np.array([_finite_centre(c) for c in centers], dtype=np.float32)
    widths = np.array(sigmas, dtype=np.float32)[:, None]
    return to_device(torch.from_numpy(gaussian_labels(centres, widths, size)), device)


def _finite_centre(center: tuple[float, float]) -> tuple[float, float]:
    cx, cy = (float(v) for v in center)
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise ValueError(f"center must be finite (x, y) cells, got {center!r}")
    return cx, cy


def label_sigma(cfg: DCFConfig, target_size: tuple[float, float]) -> float:
    """Isotropic label width in cells: ``sigma_factor * sqrt(w h)`` as in ATOM (floored)."""
    w, h = (float(v) for v in target_size)
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"target_size must be two positive numbers of cells, got {target_size!r}")
    return max(cfg.sigma_factor * math.sqrt(w * h), MIN_LABEL_SIGMA)


def correlate_taps(taps: Tensor, height: int, width: int) -> Tensor:
    """Sum per-tap maps (N, k*k, H*W) into the (N, H, W) response.

    ``taps[:, a*k + b, p]`` is filter tap (a, b) applied at cell p; output cell (i, j)
    takes tap (a, b) from cell (i + a - k // 2, j + b - k // 2). Each tap map is shifted
    by padding (negative = cropping), whose backward is as cheap as its forward; this
    matmul-then-shift form is several times faster than ``conv2d`` with one output channel.
    """
    k = math.isqrt(taps.shape[1])
    c = k // 2
    maps = taps.view(taps.shape[0], k * k, height, width).unbind(1)
    return sum(F.pad(maps[a * k + b], (c - b, b - c, c - a, a - c)) for a in range(k) for b in range(k))


def correlate_taps_folded(taps: Tensor, height: int, width: int) -> Tensor:
    """``correlate_taps`` by one ``F.fold`` of the spatially reversed tap maps: the same sums,
    added in the same tap order, so the same numbers on a CPU. Three operations instead of
    ``2 k**2 - 1`` (one launch each on a GPU), for the per-frame response and a GPU's
    refit; the first frame's fit keeps the padded sum, whose backward over its hundreds of
    maps is faster than fold's."""
    n, kk, _ = taps.shape
    k = math.isqrt(kk)
    pad = k - 1 - k // 2  # the reversed maps' padding that lands tap (a, b) on (i + a - k//2, ...)
    size = (height + k // 2 - pad, width + k // 2 - pad)  # one more row and column for even k
    maps = taps.view(n, kk, height, width).flip(-2, -1).reshape(n, kk, height * width)
    return F.fold(maps, size, k, padding=pad)[:, 0].flip(-2, -1)[:, :height, :width]


def apply_filter(z: Tensor, filt: Tensor) -> Tensor:
    """Correlate (N, D, H, W) projected features with a (D, k, k) filter -> (N, H, W); or
    (B, N, D, H, W) features with B filters (B, D, k, k) -> (B, N, H, W), each its own.
    The tap maps are summed by ``F.fold`` on a GPU (three launches instead of ``2 k**2 - 1``)
    and padded and added on a CPU, where that is twice as fast for a refit's hundreds of
    maps; the two give the same numbers."""
    *lead, n, d, height, width = z.shape
    weights = filt.reshape(*lead, d, -1).transpose(-1, -2)  # (..., k*k, D)
    if lead:
        weights = weights[:, None]
    taps = torch.matmul(weights, z.reshape(*lead, n, d, -1))
    tap_sum = correlate_taps_folded if taps.is_cuda else correlate_taps
    return tap_sum(taps.reshape(-1, *taps.shape[-2:]), height, width).view(*lead, n, height, width)


def fold_filter(filt: Tensor, proj: Tensor) -> Tensor:
    """The (D, k, k) filter folded into the (D, C) projection: (k*k, C) taps on raw features
    (or B of each, (B, D, k, k) and (B, D, C) -> (B, k*k, C)). Their products with the wide
    raw features, summed by ``correlate_taps``, are ``apply_filter(P x, f)`` at a quarter of
    the cost for D = 64, k = 4 (k*k rows instead of D)."""
    return filt.flatten(-2).transpose(-1, -2) @ proj


def project(x: Tensor, proj: Tensor) -> Tensor:
    """1x1 projection of (N, C, H, W) features by a (D, C) matrix (a matmul: faster than conv)."""
    n, _, height, width = x.shape
    return torch.matmul(proj, x.flatten(2)).view(n, -1, height, width)


def _dot(a: Params, b: Params, batched: bool = False) -> Tensor:
    """Inner product of two parameter tuples; ``batched``: one per leading row, (B,)."""
    if batched:
        return sum((u * v).flatten(1).sum(1) for u, v in zip(a, b))
    return sum((u * v).sum() for u, v in zip(a, b))


def _rows(s: Tensor, like: Tensor) -> Tensor:
    """A scalar as it is; per-row values (B,) shaped to broadcast over a (B, ...) tensor."""
    return s if s.ndim == 0 else s.view(-1, *[1] * (like.ndim - 1))


def _scale(s: Tensor, t: Tensor) -> Tensor:
    return _rows(s, t) * t


def conjugate_gradient(apply_a: Callable[[Params], Params], b: Params, iters: int,
                       batched: bool = False) -> Params:
    """Approximately solve A x = b (A symmetric positive definite) from x = 0.

    Divisions are clamped instead of branching on small residuals, so the loop never
    waits for the GPU. ``batched``: A is block-diagonal over the leading dimension of every
    parameter (independent problems, one per row), each row with its own step lengths.
    """
    x = tuple(torch.zeros_like(v) for v in b)
    r = b
    p = b
    rs = _dot(r, r, batched)
    for _ in range(iters):
        ap = apply_a(p)
        alpha = rs / _dot(p, ap, batched).clamp_min(_TINY)
        x = tuple(xi + _scale(alpha, pi) for xi, pi in zip(x, p))
        r = tuple(ri - _scale(alpha, api) for ri, api in zip(r, ap))
        rs_new = _dot(r, r, batched)
        p = tuple(ri + _scale(rs_new / rs.clamp_min(_TINY), pi) for ri, pi in zip(r, p))
        rs = rs_new
    return x


def gauss_newton_step(residual_fn: Callable[..., Tensor], params: Params, cg_iters: int,
                      batched: bool = False) -> Params:
    """One Gauss-Newton iteration on ``||residual_fn(*params)||^2``.

    Solves ``J^T J d = -J^T r`` by CG, then takes the longest of the step and its halvings
    that does not raise the objective (none: the parameters stay). ``J^T u`` is a backward
    pass; ``J v`` is the double-backward trick of ATOM (differentiate ``J^T u``, linear in a
    dummy ``u``, with respect to ``u``), which reuses one recorded graph for every CG
    iteration. It fits P and f jointly on the first frame; ``refit_filters`` is the same
    step for f alone, written out. ``batched``: independent problems, one per leading row
    of every parameter and of the (B, M) residual, each with its own CG step lengths and
    its own step length (targets started together).
    """
    leaves = tuple(p.detach().requires_grad_() for p in params)
    with torch.enable_grad():
        residual = residual_fn(*leaves)
        dummy = torch.zeros_like(residual, requires_grad=True)
        jt_dummy = torch.autograd.grad(residual, leaves, dummy, create_graph=True)

    def jt(u: Tensor) -> Params:
        return torch.autograd.grad(residual, leaves, u, retain_graph=True)

    def normal_matrix(v: Params) -> Params:
        return jt(torch.autograd.grad(jt_dummy, dummy, v, retain_graph=True)[0])

    def objective(r: Tensor) -> Tensor:
        return r.square().sum(1) if batched else r.square().sum()

    rhs = tuple(-g for g in jt(residual.detach()))
    step = conjugate_gradient(normal_matrix, rhs, cg_iters, batched)
    start = objective(residual.detach())
    with torch.no_grad():
        candidates = [tuple(p + 0.5 ** halvings * d for p, d in zip(params, step))
                      for halvings in range(MAX_STEP_HALVINGS + 1)]
        chosen = params
        for candidate in reversed(candidates):  # the longest step that does not raise it wins
            better = objective(residual_fn(*candidate)) <= start
            chosen = tuple(torch.where(_rows(better, c), c, p) for c, p in zip(candidate, chosen))
    return chosen


@functools.lru_cache(maxsize=16)
def _neighbour_offsets(width: int, device: torch.device) -> Tensor:
    """Flat offsets of a cell and its left, right, upper and lower neighbours, made once per
    grid width and device: a tensor built from host numbers on every frame would be a
    host-to-device copy from pageable memory, which waits for the GPU's queue to drain."""
    return torch.tensor([0, -1, 1, -width, width], device=device)


class SpatialMemory:
    """Online correlation filter over query-encoder features with a weighted sample memory."""

    def __init__(self, cfg: DCFConfig, feature_dim: int, generator: torch.Generator | None = None):
        if feature_dim <= 0 or cfg.proj_dim <= 0 or cfg.filter_size <= 0:
            raise ValueError(f"feature_dim, proj_dim and filter_size must be positive, got "
                             f"{feature_dim}, {cfg.proj_dim}, {cfg.filter_size}")
        self.cfg = cfg
        self.feature_dim = feature_dim
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._proj: Tensor | None = None
        self._filter: Tensor | None = None
        self._scorer: Tensor | None = None  # (k*k, C): the filter folded into P (see _set_filter)
        self._samples: Tensor | None = None  # (memory_size, D, H, W), projected by the frozen P
        self._labels: Tensor | None = None
        self._weights: np.ndarray | None = None  # float32 on the host, numpy: reweighed every frame, tiny
        self._count = 0
        self._num_init = 0
        self._newest: int | None = None  # slot of the latest add_sample
        self._steps = 0

    # --- state -------------------------------------------------------------------
    @property
    def projection(self) -> Tensor:
        """(proj_dim, C) projection matrix (frozen after ``initialize``)."""
        return self._require(self._proj)

    @property
    def filter(self) -> Tensor:
        """(proj_dim, k, k) correlation filter."""
        return self._require(self._filter)

    @property
    def weights(self) -> Tensor:
        """Weights of the stored samples, first-frame samples first; they sum to 1."""
        return torch.from_numpy(self._require(self._weights)[: self._count].copy())

    @property
    def num_samples(self) -> int:
        return self._count

    @staticmethod
    def _require(value: Tensor | np.ndarray | None) -> Tensor | np.ndarray:
        if value is None:
            raise RuntimeError("SpatialMemory.initialize must be called first")
        return value

    def _check_feat(self, feat: Tensor, name: str, finite: bool = False) -> Tensor:
        """Shape check; ``finite`` also checks the values (first frame only: it waits for the device)."""
        if feat.ndim != 4 or feat.shape[1] != self.feature_dim:
            raise ValueError(f"{name} must be (N, {self.feature_dim}, H, W), got {tuple(feat.shape)}")
        if finite and not torch.isfinite(feat).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return feat.detach().float()

    # --- first frame -------------------------------------------------------------
    def initialize(self, feats: Tensor, centers: Tensor, target_size: tuple[float, float]) -> None:
        """Fit P and f jointly on the first-frame samples (N, C, H, W) centred at ``centers``
        (N, 2) and store them as the memory's base."""
        SpatialMemory.initialize_all([self], feats[None], torch.as_tensor(centers)[None], [target_size])

    @staticmethod
    def initialize_all(memories: Sequence["SpatialMemory"], feats: Tensor, centers: Tensor,
                       target_sizes: Sequence[tuple[float, float]]) -> None:
        """``initialize`` for several memories of one config (targets started together):
        memory i fits its samples ``feats[i]`` (B, N, C, H, W) at ``centers[i]`` (B, N, 2) in
        one batched Gauss-Newton solve, each its own problem with its own step lengths."""
        first = memories[0]
        cfg = first.cfg
        if feats.ndim != 5 or len(memories) != feats.shape[0] or len(target_sizes) != feats.shape[0]:
            raise ValueError(f"{len(memories)} memories and {len(target_sizes)} sizes for feats of "
                             f"shape {tuple(feats.shape)}, which must be (B, N, C, H, W), one row each")
        batch, n = feats.shape[:2]
        feats = first._check_feat(feats.flatten(0, 1), "feats", finite=True).view(feats.shape)
        height, width = feats.shape[3:]
        device = feats.device
        centers = torch.as_tensor(centers, dtype=torch.float32, device=device)
        if centers.shape != (batch, n, 2) or not torch.isfinite(centers).all():
            raise ValueError(f"centers must be ({n}, 2) finite (x, y) cells per memory, got "
                             f"{tuple(centers.shape[1:])}")
        if not 0 < n < cfg.memory_size:
            raise ValueError(f"need 1 to memory_size - 1 = {cfg.memory_size - 1} first-frame samples, got {n}")
        sigmas = torch.tensor([label_sigma(cfg, size) for size in target_sizes], device=device)
        labels = gaussian_labels(centers.flatten(0, 1), sigmas.repeat_interleave(n)[:, None],
                                 (height, width)).view(batch, n, height, width)
        weights = torch.full((n,), 1.0 / n, device=device)

        # (B, C, N*H*W): a memory's products with all its samples are one matrix product,
        # whose gradients add up in the order a lone memory's do
        columns = feats.transpose(1, 2).reshape(batch, feats.shape[2], -1)
        proj = SpatialMemory._initial_projections(memories, columns)
        filt = torch.zeros(batch, proj.shape[1], cfg.filter_size, cfg.filter_size, device=device)
        sqrt_w = weights.sqrt()[:, None, None]
        reg_f, reg_p = math.sqrt(cfg.reg_filter), math.sqrt(cfg.reg_proj)

        def across_samples(matrices: Tensor) -> Tensor:
            """(B, R, C) matrices on every sample's features -> (B * N, R, H*W)."""
            products = torch.bmm(matrices, columns).view(batch, -1, n, height * width)
            return products.transpose(1, 2).reshape(batch * n, -1, height * width)

        def residual(f: Tensor, p: Tensor) -> Tensor:
            """(B, M): each memory's weighted data errors and regularisers."""
            scores = correlate_taps(across_samples(fold_filter(f, p)), height, width).view(batch, n, height, width)
            data = (scores - labels) * sqrt_w
            return torch.cat([data.flatten(1), reg_f * f.flatten(1), reg_p * p.flatten(1)], dim=1)

        params: Params = (filt, proj)
        for _ in range(cfg.init_gn_iters):
            params = gauss_newton_step(residual, params, cfg.init_cg_iters, batched=True)
        filters, projections = (t.detach() for t in params)
        with torch.no_grad():
            samples = across_samples(projections).view(batch, n, -1, height, width)
        for memory, filt, proj, sample, label in zip(memories, filters, projections, samples, labels):
            memory._proj = proj
            memory._set_filter(filt)
            memory._samples = torch.zeros(cfg.memory_size, proj.shape[0], height, width, device=device)
            memory._labels = torch.zeros(cfg.memory_size, height, width, device=device)
            memory._weights = np.zeros(cfg.memory_size, dtype=np.float32)
            memory._samples[:n] = sample
            memory._labels[:n] = label
            memory._weights[:n] = 1.0 / n
            memory._count = memory._num_init = n
            memory._newest = None
            memory._steps = 0

    @staticmethod
    def _initial_projections(memories: Sequence["SpatialMemory"], columns: Tensor) -> Tensor:
        """(B, proj_dim, C): the leading principal directions of each memory's features
        (B, C, samples); small random rows (the memory's generator) where C < proj_dim.
        One eigendecomposition per memory: a batched one gives other eigenvectors where
        eigenvalues lie close (the CPU's batched solver rounds differently), so a target
        started with others would not get the projection it gets alone."""
        cfg = memories[0].cfg
        channels = columns.shape[1]
        centred = columns - columns.mean(dim=2, keepdim=True)
        eigvecs = torch.stack([torch.linalg.eigh(gram).eigenvectors  # ascending eigenvalues
                               for gram in centred @ centred.transpose(1, 2)])
        keep = min(cfg.proj_dim, channels)
        proj = eigvecs[..., -keep:].flip(-1).transpose(1, 2).contiguous()
        if keep < cfg.proj_dim:
            extra = torch.stack([torch.randn(cfg.proj_dim - keep, channels, generator=m.generator) for m in memories])
            proj = torch.cat([proj, 0.01 * extra.to(columns.device)], dim=1)
        return proj

    # --- tracking ----------------------------------------------------------------
    def _set_filter(self, filt: Tensor) -> None:
        """Keep f and, for the per-frame response, f folded into P (``fold_filter``): it
        changes only when f does, so frames do not recompute it."""
        self._filter = filt
        self._scorer = fold_filter(filt, self.projection)

    def response(self, feat: Tensor) -> Tensor:
        """(H, W) filter scores for one (1, C, H, W) feature map, aligned with its grid."""
        if feat.shape[0] != 1:
            raise ValueError(f"feat must hold one sample, got {feat.shape[0]}")
        return self.responses([self], feat)[0]

    @staticmethod
    def responses(memories: Sequence["SpatialMemory"], feats: Tensor) -> Tensor:
        """(B, H, W): each memory's scores on its own row of ``feats`` (B, C, H, W), in one
        batched product (a lockstep step scores all its targets at once)."""
        if len(memories) != feats.shape[0]:
            raise ValueError(f"{len(memories)} memories for {feats.shape[0]} feature maps")
        first = memories[0]
        feats = first._check_feat(feats.to(first.projection.device), "feats")
        return SpatialMemory.scores(SpatialMemory.scorers(memories), feats)

    @staticmethod
    def scorers(memories: Sequence["SpatialMemory"]) -> Tensor:
        """(B, k*k, C): each memory's filter folded into its projection (``fold_filter``)."""
        return torch.stack([m._require(m._scorer) for m in memories])

    @staticmethod
    def scores(scorers: Tensor, feats: Tensor) -> Tensor:
        """(B, H, W): folded filters (B, k*k, C) on feature maps (B, C, H, W), row by row."""
        with torch.no_grad():
            return correlate_taps_folded(torch.bmm(scorers, feats.flatten(2)), *feats.shape[2:])

    @staticmethod
    def peak_values(responses: Tensor) -> Tensor:
        """(B, 6) for (B, H, W) responses ((6,) for one (H, W) map), on their device, without
        waiting for it: the argmax's flat index, its score and the scores left, right, above
        and below it (clamped at the borders)."""
        if responses.ndim not in (2, 3) or responses.numel() == 0:
            raise ValueError(f"responses must be non-empty (H, W) or (B, H, W) maps, got "
                             f"{tuple(responses.shape)}")
        if responses.ndim == 2:
            return SpatialMemory.peak_values(responses[None])[0]
        flat = responses.flatten(1)
        index = torch.argmax(flat, dim=1, keepdim=True)
        offsets = _neighbour_offsets(responses.shape[2], flat.device)
        around = flat.gather(1, (index + offsets).clamp(0, flat.shape[1] - 1))
        return torch.cat([index.to(flat.dtype), around], dim=1)

    @staticmethod
    def locate_values(values, shape: tuple[int, int]) -> tuple[float, float, float]:
        """Peak (x, y) in cells, refined by a parabola through the neighbours, and its score,
        from ``peak_values`` read back to the host."""
        height, width = shape
        index, peak, left, right, above, below = values.tolist()  # Python floats, as float() gives
        iy, ix = divmod(int(index), width)

        def offset(before: float, after: float) -> float:
            curvature = before - 2.0 * peak + after
            if curvature >= 0:  # flat or not a maximum along this axis
                return 0.0
            # clipped to half a cell by two comparisons: np.clip's Python layers cost 4 us a
            # call, per target and frame
            return min(max(0.5 * (before - after) / curvature, -0.5), 0.5)

        dx = offset(left, right) if 0 < ix < width - 1 else 0.0
        dy = offset(above, below) if 0 < iy < height - 1 else 0.0
        return ix + dx, iy + dy, peak

    @classmethod
    def locate(cls, response: Tensor) -> tuple[float, float, float]:
        """``locate_values`` of ``peak_values``, read back now."""
        return cls.locate_values(cls.peak_values(response).cpu(), tuple(response.shape))

    def add_sample(self, feat: Tensor, center: tuple[float, float], target_size: tuple[float, float]) -> None:
        """Store a tracked frame's sample with weight ``learning_rate``; older ones decay by
        ``1 - learning_rate`` per sample and all are renormalised.

        When the memory is full the lightest later-frame sample (the oldest) is replaced;
        first-frame samples keep at least ``INIT_WEIGHT_FLOOR`` of the total weight.
        """
        proj = self.projection
        feat = self._check_sample_feats(feat.to(proj.device), 1)
        with torch.no_grad():
            sample = project(feat, proj)[0]
        label = _host_labels([center], [label_sigma(self.cfg, target_size)], tuple(feat.shape[2:]), proj.device)
        self._store(sample, label[0])

    @staticmethod
    def add_samples(memories: Sequence["SpatialMemory"], feats: Tensor,
                    centers: Sequence[tuple[float, float]], target_sizes: Sequence[tuple[float, float]]) -> None:
        """``add_sample`` for several memories, row i of ``feats`` (B, C, H, W) to memory i
        (a lockstep step's targets): one batched projection and one set of labels for all.
        Labels are drawn on the host and sent with one copy (a dozen small kernels fewer on
        a GPU), as ``add_sample``'s are."""
        if len(memories) == 1:
            return memories[0].add_sample(feats, centers[0], target_sizes[0])
        if not len(memories) == len(centers) == len(target_sizes):
            raise ValueError(f"{len(memories)} memories, {len(centers)} centres, {len(target_sizes)} sizes")
        first = memories[0]
        device = first.projection.device
        feats = first._check_sample_feats(feats.to(device), len(memories))
        with torch.no_grad():
            samples = torch.matmul(torch.stack([m.projection for m in memories]), feats.flatten(2))
        labels = _host_labels(centers, [label_sigma(m.cfg, size) for m, size in zip(memories, target_sizes)],
                              tuple(feats.shape[2:]), device)
        for memory, sample, label in zip(memories, samples.view(len(memories), -1, *feats.shape[2:]), labels):
            memory._store(sample, label)

    def _check_sample_feats(self, feats: Tensor, rows: int) -> Tensor:
        feats = self._check_feat(feats, "feat")
        samples = self._samples
        if feats.shape[0] != rows or feats.shape[2:] != samples.shape[2:]:
            raise ValueError(f"feat must be ({rows}, {self.feature_dim}, {samples.shape[2]}, {samples.shape[3]}) "
                             f"like the first-frame samples, got {tuple(feats.shape)}")
        return feats

    def _store(self, sample: Tensor, label: Tensor) -> None:
        """Put a projected sample and its label in a slot and reweigh (``add_sample``)."""
        weights = self._weights
        lr = self.cfg.learning_rate
        n_init = self._num_init
        if self._count < self.cfg.memory_size:
            slot = self._count
            self._count += 1
        else:
            slot = n_init + int(np.argmin(weights[n_init:]))
        # The newest sample outweighs the previous newest by 1 / (1 - lr); with no
        # eviction or floor this is exactly "new = lr, old *= 1 - lr" (as in ATOM).
        new = lr if self._newest is None else float(weights[self._newest])
        weights[: self._count] *= 1.0 - lr
        weights[slot] = new
        weights[: self._count] /= weights[: self._count].sum()
        if weights[:n_init].sum() < INIT_WEIGHT_FLOOR:
            weights[n_init: self._count] *= (1.0 - INIT_WEIGHT_FLOOR) / weights[n_init: self._count].sum()
            weights[:n_init] = INIT_WEIGHT_FLOOR / n_init
        self._newest = slot
        self._samples[slot] = sample
        self._labels[slot] = label

    @property
    def refit_due(self) -> bool:
        """Whether the next accepted frame (``step``) refines the filter."""
        interval = self.cfg.update_interval
        return interval > 0 and (self._steps + 1) % interval == 0

    def step(self) -> bool:
        """Count an accepted frame; every ``update_interval`` of them refine f by CG (P frozen)."""
        return bool(SpatialMemory.step_all([self]))

    @staticmethod
    def step_all(memories: Sequence["SpatialMemory"], solve: Optional[Solve] = None) -> list["SpatialMemory"]:
        """``step`` for several memories (a lockstep step's targets): those whose refit is
        due are refined together, by one batched solve (``refit_filters``). Returns them.
        ``solve``: a fixed-shape runner of ``refit_pass`` (on CUDA its graph, one launch for
        the refit's few hundred operators); it gets every sample slot of each memory, the
        unused ones weighing 0, so its shapes are the same at every refit."""
        due = []
        for memory in memories:
            memory._require(memory._filter)
            if memory.refit_due:
                due.append(memory)
            memory._steps += 1
        if due:
            SpatialMemory._update_filters(due, solve)
        return due

    @staticmethod
    def _update_filters(memories: Sequence["SpatialMemory"], solve: Optional[Solve]) -> None:
        """Refine the filters of ``memories`` (P frozen), all in one batched solve: each
        memory's samples padded to the largest count with zero weight (they add nothing to
        its objective), or with ``solve`` to the memory's size."""
        cfg = memories[0].cfg
        n = cfg.memory_size if solve is not None else max(m._count for m in memories)
        z = _rows_of([m._samples[:n] for m in memories])           # (B, n, D, H, W)
        labels = _rows_of([m._labels[:n] for m in memories])       # (B, n, H, W)
        weights = np.zeros((len(memories), n), dtype=np.float32)
        for row, m in zip(weights, memories):
            row[:m._count] = m._weights[:m._count]
        filters = torch.stack([m._filter for m in memories])
        (fitted,) = (solve or refit_pass)(z, labels, to_device(torch.from_numpy(weights), z.device), filters,
                                          reg=cfg.reg_filter, cg_iters=cfg.update_cg_iters)
        for memory, filt in zip(memories, fitted):
            memory._set_filter(filt)


def _rows_of(tensors: Sequence[Tensor]) -> Tensor:
    """``torch.stack``, but a view for one tensor: a lone memory's samples (up to 16 MB for
    ``lite``) are not copied for every refit."""
    return tensors[0][None] if len(tensors) == 1 else torch.stack(tensors)


def refit_filters(samples: Tensor, labels: Tensor, weights: Tensor, filters: Tensor, reg: float,
                  cg_iters: int) -> Tensor:
    """One Gauss-Newton step on each row's ``sum_n w_n ||f * z_n - y_n||^2 + reg ||f||^2``:
    ``gauss_newton_step`` for a problem that is linear in f, written out.

    Samples (B, n, D, H, W), labels (B, n, H, W), weights (B, n), filters (B, D, k, k).
    The normal matrix is applied as ``J^T (w J v) + reg v``: the filter applied
    (``apply_filter``), then its adjoint (``filter_adjoint``), a few operations per CG
    iteration where autograd's double backward recorded and replayed hundreds. The line
    search is the same rule, longest of the step and its halvings that does not raise the
    objective, read off the exact quadratic along the step d:
    ``E(f + t d) - E(f) = 2 t (r . J d) + t^2 |J d|^2``.
    """
    k = filters.shape[-1]
    w = weights[:, :, None, None]
    error = apply_filter(samples, filters) - labels                 # r without sqrt(w)

    def normal_matrix(v: Params) -> Params:
        (u,) = v
        return (filter_adjoint(samples, w * apply_filter(samples, u), k) + reg * u,)

    gradient = filter_adjoint(samples, w * error, k) + reg * filters   # J^T r
    (step,) = conjugate_gradient(normal_matrix, (-gradient,), cg_iters, batched=True)
    along = apply_filter(samples, step)                             # J d without sqrt(w)
    slope = (w * error * along).flatten(1).sum(1) + reg * (filters * step).flatten(1).sum(1)
    curvature = (w * along.square()).flatten(1).sum(1) + reg * step.square().flatten(1).sum(1)
    lengths = 0.5 ** torch.arange(MAX_STEP_HALVINGS + 1, device=filters.device, dtype=filters.dtype)
    change = 2 * lengths * slope[:, None] + lengths.square() * curvature[:, None]  # (B, halvings)
    # the longest length whose change is not positive; 0 where none is
    chosen = torch.where(change <= 0, lengths, torch.zeros_like(lengths)).amax(1)
    return filters + _rows(chosen, step) * step


def refit_pass(samples: Tensor, labels: Tensor, weights: Tensor, filters: Tensor, reg: float,
               cg_iters: int) -> tuple[Tensor]:
    """``refit_filters`` as a pass (its result in a one-tuple), for ``model/graphs.py``'s
    runners: nothing in it reads a value back to the host, and its rows are independent."""
    return (refit_filters(samples, labels, weights, filters, reg, cg_iters),)


def filter_adjoint(samples: Tensor, maps: Tensor, k: int) -> Tensor:
    """The transpose of ``apply_filter`` in the filter: (B, n, D, H, W) samples z and
    (B, n, H, W) maps u -> (B, D, k, k) g with ``<g, f> = sum_n <u_n, f * z_n>`` for every
    filter f. Tap (a, b) reads the sample at (i + a - k//2, j + b - k//2) for output cell
    (i, j), so its adjoint reads u at p - (a - k//2, b - k//2): windows of u padded the
    other way round (a strided view, copied once), taps in reverse order."""
    batch, n, d, height, width = samples.shape
    c = k // 2
    padded = F.pad(maps.reshape(batch * n, height, width), (k - 1 - c, c, k - 1 - c, c))
    sample, rows, cols = padded.stride()
    windows = padded.as_strided((batch, n, k, k, height, width), (n * sample, sample, rows, cols, rows, cols))
    reversed_taps = torch.matmul(windows.reshape(batch, n, k * k, height * width),
                                 samples.flatten(3).transpose(-1, -2)).sum(1)  # (B, k^2, D)
    return reversed_taps.flip(1).transpose(1, 2).reshape(batch, d, k, k)


def augment_first_frame(crop: np.ndarray, center: tuple[float, float], rng: np.random.Generator,
                        count: int = DCF_AUGMENTED_SAMPLES) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """Augmented copies of the first-frame crop and the target centre (crop pixels) in each.

    The fixed set follows ATOM: identity, horizontal flip, rotations about the crop
    centre, anisotropic blurs and shifts (borders repeat the edge). Kinds are
    interleaved so a smaller ``count`` still covers every kind; a larger one adds random
    combinations of shift, rotation and flip drawn from ``rng``.
    """
    if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        shape = getattr(crop, "shape", None)
        raise ValueError(f"crop must be an HxWx3 uint8 RGB array, got shape {shape}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    height, width = crop.shape[:2]
    cx, cy = (float(v) for v in center)
    if not (0 <= cx <= width - 1 and 0 <= cy <= height - 1):
        raise ValueError(f"center {center!r} lies outside the {width}x{height} crop")

    mid = ((width - 1) / 2.0, (height - 1) / 2.0)

    def affine(matrix: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        out = cv2.warpAffine(crop, matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        x, y = matrix @ np.array([cx, cy, 1.0])
        return out, (float(x), float(y))

    def rotate(degrees: float) -> tuple[np.ndarray, tuple[float, float]]:
        return affine(cv2.getRotationMatrix2D(mid, degrees, 1.0))

    def shift(fx: float, fy: float) -> tuple[np.ndarray, tuple[float, float]]:
        return affine(np.array([[1.0, 0.0, round(fx * width)], [0.0, 1.0, round(fy * height)]]))

    def blur(sx: float, sy: float) -> tuple[np.ndarray, tuple[float, float]]:
        return cv2.GaussianBlur(crop, (0, 0), sigmaX=sx, sigmaY=sy), (cx, cy)

    def identity() -> tuple[np.ndarray, tuple[float, float]]:
        return crop.copy(), (cx, cy)

    def flip() -> tuple[np.ndarray, tuple[float, float]]:
        return np.ascontiguousarray(crop[:, ::-1]), (width - 1 - cx, cy)

    varied = [
        [lambda a=a: rotate(a) for a in (10, -10, 45, -45, 5, -5, 20, -20, 30, -30, 60, -60)],
        [lambda s=s: blur(*s) for s in ((2, 0.2), (0.2, 2), (3, 1), (1, 3), (2, 2))],
        [lambda s=s: shift(*s) for s in ((0.15, 0.15), (-0.15, 0.15), (0.15, -0.15), (-0.15, -0.15),
                                         (0.15, 0), (-0.15, 0), (0, 0.15), (0, -0.15))],
    ]
    order = [identity, flip] + [kind[i] for i in range(max(map(len, varied)))
                                for kind in varied if i < len(kind)]
    images, centers = [], []
    for make in order[:count]:
        image, c = make()
        images.append(image)
        centers.append(c)
    while len(images) < count:
        angle = float(rng.uniform(-30, 30))
        dx, dy = rng.uniform(-0.15, 0.15, size=2)
        matrix = cv2.getRotationMatrix2D(mid, angle, 1.0)
        matrix[:, 2] += (round(dx * width), round(dy * height))
        image, c = affine(matrix)
        if rng.random() < 0.5:
            image, c = np.ascontiguousarray(image[:, ::-1]), (width - 1 - c[0], c[1])
        images.append(image)
        centers.append(c)
    return images, centers
