"""Segmentation loss of the paper: bootstrapped BCE + lambda * (1 - soft IoU)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bootstrapped_bce(fg_logit: torch.Tensor, target: torch.Tensor, hardest: float = 0.4) -> torch.Tensor:
    """Mean BCE over the hardest ``hardest`` fraction of pixels of each sample."""
    per_pixel = F.binary_cross_entropy_with_logits(fg_logit, target, reduction="none").flatten(1)
    k = max(1, int(hardest * per_pixel.shape[1]))
    return per_pixel.topk(k, dim=1).values.mean()


def soft_iou_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    p, t = prob.flatten(1), target.flatten(1)
    inter = (p * t).sum(1)
    union = (p + t - p * t).sum(1)
    return (1.0 - (inter + eps) / (union + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, iou_weight: float = 1.0,
                      hardest: float = 0.4) -> torch.Tensor:
    """``logits`` (B, 2, S, S) from the decoder, ``target`` (B, 1, S, S) in {0, 1}."""
    fg_logit = (logits[:, 1:2] - logits[:, 0:1]).float()
    prob = torch.sigmoid(fg_logit)
    return bootstrapped_bce(fg_logit, target, hardest) + iou_weight * soft_iou_loss(prob, target)


def batch_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean hard IoU of the predicted masks (for logs)."""
    pred = (logits[:, 1] > logits[:, 0]).flatten(1).float()
    t = target.flatten(1)
    inter = (pred * t).sum(1)
    union = ((pred + t) > 0).float().sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean()
