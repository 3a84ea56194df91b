"""CUDA graphs for the network's fixed-shape passes (query encoder, memory encoder, decoder,
and the memory read with the decoder, at a capped memory's most entries: ``slot_capacity``).

A tracked frame launches some 450 small kernels; on an H100 launching them costs several
times running them (paper preset: 2.3 ms of kernels in an 8 ms frame; the query encoder
alone 4.6 ms eager, 0.85 ms replayed from a graph; docs/bench.md). A graph replays a
pass's kernels with one launch. Graphs need fixed shapes, so a batch is padded to the
next power of two (rows are independent: BatchNorm is folded, nothing mixes samples) and
the padding rows are dropped: at most log2(B) + 1 graphs per pass and option set.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, Hashable, Sequence

import torch
from torch import Tensor

Pass = Callable[..., tuple[Tensor, ...]]


def padded_size(n: int) -> int:
    """The next power of two >= ``n`` (n >= 1)."""
    if n < 1:
        raise ValueError(f"a batch needs at least one row, got {n}")
    return 1 << (n - 1).bit_length()


def pad_rows(x: Tensor, size: int) -> Tensor:
    """``x`` with its last row repeated up to ``size`` rows (a real row: no NaN from zeros)."""
    extra = size - x.shape[0]
    return x if extra == 0 else torch.cat([x, x[-1:].expand(extra, *x.shape[1:])])


class PackedOutputs:
    """Where a pass's outputs lie in one flat buffer, each dense in its own dimension order
    (channels-last stays channels-last, a strided view becomes dense): a graph writes them
    there, so a replay's outputs come out with one copy of the buffer, not one per output."""

    def __init__(self, outputs: Sequence[Tensor]):
        if len({out.dtype for out in outputs}) != 1:
            raise ValueError(f"outputs of one dtype pack together, got {[out.dtype for out in outputs]}")
        self.dtype = outputs[0].dtype
        self.layouts, offset = [], 0
        for out in outputs:
            self.layouts.append((out.shape, torch.empty_like(out, device="meta").stride(), offset))
            offset += out.numel()
        self.size = offset

    def write(self, flat: Tensor, outputs: Sequence[Tensor]) -> None:
        for view, out in zip(self.views(flat), outputs):
            view.copy_(out)

    def views(self, flat: Tensor) -> tuple[Tensor, ...]:
        return tuple(flat.as_strided(shape, stride, offset) for shape, stride, offset in self.layouts)


class GraphedPass:
    """One CUDA graph of ``fn`` at the shapes of ``example``: inputs are copied into static
    buffers, the graph is replayed, and the outputs are returned as fresh tensors (so a
    caller may keep them across replays, as memory entries are kept): views of one copy of
    the buffer the graph packs them into (``PackedOutputs``; a pass's outputs share a dtype)."""

    def __init__(self, fn: Pass, example: tuple[Tensor, ...], options: dict, warmup: int = 2):
        device = example[0].device
        self.inputs = tuple(x.clone() for x in example)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # library setup (cuDNN plans, workspaces) out of the graph
            for _ in range(warmup):
                fn(*self.inputs, **options)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: a frame-reading thread may pin host memory while this captures
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            self.outputs = fn(*self.inputs, **options)  # kept alive: replays write them, then pack them
            self.packed = PackedOutputs(self.outputs)
            self.flat = torch.empty(self.packed.size, dtype=self.packed.dtype, device=device)
            self.packed.write(self.flat, self.outputs)

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        for static, x in zip(self.inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return self.packed.views(self.flat.clone())


class BatchBuckets:
    """``fn`` run on its batch padded to a power of two, by a runner made once per padded
    shape and option set: ``make(fn, padded_inputs, options)`` returns a callable of the
    padded inputs (a ``GraphedPass`` on CUDA; tests on a CPU bind the options eagerly)."""

    def __init__(self, fn: Pass, make: Callable[[Pass, tuple[Tensor, ...], dict], Pass] = GraphedPass):
        self.fn, self.make = fn, make
        self.runners: dict[Hashable, Pass] = {}

    def __call__(self, *inputs: Tensor, **options) -> tuple[Tensor, ...]:
        n = inputs[0].shape[0]
        size = padded_size(n)
        padded = tuple(pad_rows(x, size) for x in inputs)
        key = (tuple((x.shape, x.dtype) for x in padded), tuple(sorted(options.items())))
        runner = self.runners.get(key)
        if runner is None:
            runner = self.runners[key] = self._made(padded, options)
        outputs = runner(*padded)
        # unpadded, the outputs as they are: a slice per output is host time on a GPU
        return outputs if size == n else tuple(out[:n] for out in outputs)

    def _made(self, padded: tuple[Tensor, ...], options: dict) -> Pass:
        """A new runner; where the graph cannot be made (an operation capture does not allow,
        on some GPU or driver) the pass runs operator by operator, with a warning, rather
        than the tracking stopping."""
        try:
            return self.make(self.fn, padded, options)
        except RuntimeError as error:
            name = getattr(self.fn, "__name__", None) or getattr(getattr(self.fn, "func", None), "__name__", "a pass")
            warnings.warn(f"no CUDA graph of {name} at {[tuple(x.shape) for x in padded]} ({error}); "
                          "it runs operator by operator", stacklevel=3)
            return functools.partial(self.fn, **options)
