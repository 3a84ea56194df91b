"""Appearance memory: stored keys/values of past frames, read by non-local attention."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from samn_tracker.batch_rows import grouped, in_order, take_rows
from samn_tracker.devices import to_device


SUBNORMAL_MARGIN = 70.0  # e^-70 / N stays a normal float32 for any memory under 10^7 positions


def read_memory(query_key: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Non-local read: ``V_mem softmax_mem(K_mem^T q / sqrt(d_k))`` for every query position.

    query_key (B, dk, H, W); memory_keys (B, dk, N); memory_values (B, dv, N), N = all
    memory positions of all frames; ``valid`` (B, N) bool: the positions that hold entries,
    where a memory is laid out in slots of a fixed size (``in_slots``), the others weighing
    nothing (on a CPU under e^-70 of the largest weight, as weak logits do). Returns
    (B, dv, H, W). On a GPU it is the fused ``scaled_dot_product_attention`` kernel. On a
    CPU it is two matrix products around a softmax whose logits are raised to at least the
    largest minus ``SUBNORMAL_MARGIN``: a read is sharp, so many of its weights would be
    subnormal, and x86 computes with those ~100x slower. The raised weights stay under
    e^-70 of the largest, so no output changes, and the read is 2-3x faster than the fused
    kernel's CPU path.
    """
    if query_key.device.type != "cpu":
        return fused_read(query_key, memory_keys, memory_values, valid)
    b, dk, h, w = query_key.shape
    q = query_key.flatten(2).transpose(1, 2)                     # (B, HW, dk)
    if valid is None:
        logits = torch.bmm(q * dk ** -0.5, memory_keys)          # (B, HW, N)
    else:  # -inf added where no entry lies (the others' logits are the products as they are),
        # then raised to the floor as every weak logit is: each weighs under e^-70 of the largest
        absent = torch.zeros(valid.shape, dtype=q.dtype, device=q.device).masked_fill_(~valid, -math.inf)
        logits = torch.baddbmm(absent[:, None], q * dk ** -0.5, memory_keys)
    logits = torch.maximum(logits, logits.amax(dim=2, keepdim=True) - SUBNORMAL_MARGIN)
    return torch.bmm(memory_values, logits.softmax(dim=2).transpose(1, 2)).reshape(b, -1, h, w)


def fused_read(query_key: torch.Tensor, memory_keys: torch.Tensor, memory_values: torch.Tensor,
               valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``read_memory`` as a GPU computes it: ``scaled_dot_product_attention``, ``valid`` its
    attention mask (a CPU has the kernel too, slower than ``read_memory``'s products)."""
    b, _, h, w = query_key.shape
    out = F.scaled_dot_product_attention(query_key.flatten(2).transpose(1, 2), memory_keys.transpose(1, 2),
                                         memory_values.transpose(1, 2),
                                         attn_mask=None if valid is None else valid[:, None, :])
    return out.transpose(1, 2).reshape(b, -1, h, w)


def read_memories(query_key: torch.Tensor, memories: Sequence["AppearanceMemory"]) -> torch.Tensor:
    """``read_memory`` with each row of ``query_key`` reading its own memory. Rows whose
    memories hold entries of the same sizes are read in one batched attention: a lockstep
    step's targets, whose memories grow at the same frames, mostly share a few layouts, so
    there are few reads however many targets. Such a group's keys and values are gathered
    from the entries in one copy each (a memory read alone uses its cached concatenation)."""
    if len(memories) != query_key.shape[0]:
        raise ValueError(f"{query_key.shape[0]} query rows but {len(memories)} memories")
    groups = grouped(memory.layout() for memory in memories)
    parts = []
    for rows in groups:
        if len(rows) == 1:
            keys, values = memories[rows[0]].keys_values()
        else:
            entries = [memories[i].entries() for i in rows]
            size = sum(memories[rows[0]].layout())
            keys, values = (_stacked(entries, field, size, [size] * len(rows)) for field in ("key", "value"))
        parts.append(read_memory(take_rows(query_key, rows), keys, values))
    return in_order(parts, groups)


def slot_capacity(memories: Sequence["AppearanceMemory"], fixed: bool = True) -> int:
    """Entries the slots of a batch of capped memories hold (``in_slots``): with ``fixed``
    (for CUDA graphs, one per shape) the most a memory can hold, so that the read's shape
    never changes as the memories grow; else as many as the longest memory holds. An
    uncapped memory has no such size (padded to a few sizes, its read would do up to twice
    its work: the tracker reads it at its own size)."""
    most = [memory.most_entries for memory in memories]
    if None in most:
        raise ValueError("slots are for memories with max_entries; an uncapped memory is read at its own size")
    return max(most) if fixed else max(len(memory) for memory in memories)


def in_slots(memories: Sequence["AppearanceMemory"], capacity: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keys (B, dk, capacity P) and values (B, dv, capacity P) of memories whose entries
    have P positions each, every memory's entries in read order in ``capacity`` slots and
    the unused slots zero; and which positions hold entries, (B, capacity P) bool: a read
    whose size does not change as the memories grow. One concatenation per field for the
    batch, the positions' flags sent in one copy."""
    size = capacity * memories[0].first.key.shape[1]
    entries = [memory.entries() for memory in memories]
    used = [sum(entry.key.shape[1] for entry in group) for group in entries]
    if max(used) > size:
        raise ValueError(f"{max(len(group) for group in entries)} entries do not fit {capacity} slots")
    valid = np.arange(size)[None] < np.array(used)[:, None]
    return (_stacked(entries, "key", size, used), _stacked(entries, "value", size, used),
            to_device(torch.from_numpy(valid), memories[0].first.key.device))


def _stacked(entries: Sequence[Sequence["MemoryEntry"]], field: str, size: int, used: Sequence[int]) -> torch.Tensor:
    """(B, d, size): each memory's entries' ``field`` (d, positions) in read order, zero
    beyond them up to ``size``, gathered with one concatenation and one copy for the batch.
    ``used``: each memory's positions (an entry's key and value have as many), counted once
    by the caller: over a lockstep group's full memories, counting them was most of this
    function's host time."""
    first = getattr(entries[0][0], field)
    zeros = first.new_zeros(first.shape[0], size - min(used)) if min(used) < size else None
    parts = []
    for group, count in zip(entries, used):
        parts += [getattr(entry, field) for entry in group]
        if count < size:
            parts.append(zeros[:, :size - count])
    flat = torch.cat(parts, dim=1)  # (d, B size): memory after memory
    return flat.view(flat.shape[0], len(entries), size).transpose(0, 1).contiguous()


@dataclass
class MemoryEntry:
    key: torch.Tensor    # (dk, h*w)
    value: torch.Tensor  # (dv, h*w)
    frame: int


@dataclass
class AppearanceMemory:
    """First frame, sampled frames (optionally at most ``max_entries``, oldest evicted
    first) and a temporary entry for the previous frame. Entries are encoded once;
    the concatenation is cached until the memory changes."""

    keep_first: bool = True
    max_entries: Optional[int] = None
    first: Optional[MemoryEntry] = None
    sampled: list[MemoryEntry] = field(default_factory=list)
    last: Optional[MemoryEntry] = None
    _cache: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    def set_first(self, entry: MemoryEntry) -> None:
        self.first = entry
        self._cache = None

    def add_sampled(self, entry: MemoryEntry) -> None:
        self.sampled.append(entry)
        if self.max_entries is not None and len(self.sampled) > self.max_entries:
            self.sampled.pop(0)
        if self.last is not None and self.last.frame == entry.frame:
            self.last = None
        self._cache = None

    def set_last(self, entry: MemoryEntry) -> None:
        self.last = entry
        self._cache = None

    def entries(self) -> list[MemoryEntry]:
        first = [self.first] if self.first is not None and (self.keep_first or not self.sampled
                                                             and self.last is None) else []
        last = [self.last] if self.last is not None else []
        return first + self.sampled + last

    def __len__(self) -> int:
        return len(self.entries())

    def layout(self) -> tuple[int, ...]:
        """Positions per entry, in read order: memories of one layout read together."""
        return tuple(entry.key.shape[1] for entry in self.entries())

    @property
    def most_entries(self) -> Optional[int]:
        """The most entries the memory can hold (None: unbounded): the first, the sampled
        ones and the last."""
        return None if self.max_entries is None else self.max_entries + 2

    def keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (1, dk, N) and values (1, dv, N) of all entries."""
        if self._cache is None:
            entries = self.entries()
            keys = torch.cat([e.key for e in entries], dim=1).unsqueeze(0)
            values = torch.cat([e.value for e in entries], dim=1).unsqueeze(0)
            self._cache = (keys, values)
        return self._cache
