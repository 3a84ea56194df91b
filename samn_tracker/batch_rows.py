"""Rows of a lockstep batch: picking some, grouping them by a shared shape, and putting
the groups' results back in target order. Work that needs equal shapes (an upload of
frames, a paste-back, a memory read of one length) runs once per group instead of once
per target."""
from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import torch

from samn_tracker.devices import to_device


def take_rows(tensor: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """``tensor[rows]`` (same values) with the index sent by ``to_device``; all rows in
    order are the tensor itself."""
    if list(rows) == list(range(tensor.shape[0])):
        return tensor
    return tensor.index_select(0, to_device(torch.tensor(rows, dtype=torch.long), tensor.device))


def grouped(keys: Iterable[Hashable]) -> list[list[int]]:
    """Indices grouped by equal keys, groups in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def in_order(parts: Sequence[torch.Tensor], groups: Sequence[Sequence[int]]) -> torch.Tensor:
    """The rows of ``parts`` (one tensor per group of ``grouped``) back in index order, by
    views and at most one concatenation (no index tensor to send to the device)."""
    if len(parts) == 1:
        return parts[0]
    rows = {i: row for part, members in zip(parts, groups) for i, row in zip(members, part.split(1))}
    return torch.cat([rows[i] for i in range(len(rows))])
