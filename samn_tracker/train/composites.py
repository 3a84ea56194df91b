"""Clips made from the annotated frames of training videos, for data with few scenes.

* ``VideoFrameStills``: each annotated frame is a still image; three strongly augmented
  views of its object make a clip (the static-image stage of STM / XMem / Cutie).
* ``CutAndPaste``: an object cut from one training frame moves over a frame of another
  training video, behind it sometimes a second object (or a copy of the target: a
  same-looking distractor), in front of it sometimes an occluder that hides part of it
  in the later frames. The target's mask is exact, and the network cannot solve the
  clip by remembering a scene.

Both draw only from the videos of a ``VideoClipSource``, so its split and held-out
checks cover them too.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from samn_tracker.errors import InputError
from samn_tracker.datasets import read_image
from samn_tracker.train.clips import Clip
from samn_tracker.train.still_images import STRONG_AUGMENTATION, ViewAugmentation, augment_views, photometric
from samn_tracker.train.video_clips import VideoClipSource


@dataclass(frozen=True)
class FrameRef:
    video: int
    position: int


class AnnotatedFrames:
    """One object of one annotated video frame, chosen at random among the visible ones."""

    def __init__(self, videos: VideoClipSource, stride: int = 1):
        self.videos = videos
        self.refs = [FrameRef(v, p) for v, video in enumerate(videos.videos)
                     for p in range(0, len(video.frames), stride)]
        if not self.refs:
            raise InputError("no annotated frame to draw objects from")

    def __len__(self) -> int:
        return len(self.refs)

    def object(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
        """Image and mask of a visible object at ``index`` or, if that frame shows none,
        at the next frame that does."""
        for step in range(len(self.refs)):
            ref = self.refs[(index + step) % len(self.refs)]
            video = self.videos.videos[ref.video]
            labels = self.videos.labels(video, ref.position)
            objects = self.videos.visible_objects(labels)
            if objects:
                object_id = objects[int(rng.integers(len(objects)))]
                image = read_image(video.frames[ref.position])
                if image.shape[:2] != labels.shape:
                    raise InputError(f"annotation {video.annotations[ref.position]} does not "
                                     f"match the size of {video.frames[ref.position]}")
                return image, labels == object_id, f"{video.name}#{object_id}@{ref.position}"
        raise InputError("no annotated frame shows an object")

    def video_of(self, index: int) -> int:
        return self.refs[index % len(self.refs)].video


class VideoFrameStills(AnnotatedFrames):
    """Three augmented views of one object of one training frame."""

    def __init__(self, videos: VideoClipSource, augmentation: ViewAugmentation = STRONG_AUGMENTATION):
        super().__init__(videos)
        self.augmentation = augmentation

    def clip(self, index: int, rng: np.random.Generator) -> Clip:
        image, mask, name = self.object(index, rng)
        views = augment_views(image, mask, rng, self.augmentation)
        return Clip([v.image for v in views], [v.mask for v in views], name=f"still:{name}")


@dataclass
class PasteOptions:
    """Probabilities and motion of the composites; shifts are fractions of the frame size."""

    distractor_prob: float = 0.6
    copy_distractor_prob: float = 0.3
    occluder_prob: float = 0.3
    drift: float = 0.08
    camera_shift: float = 0.02
    feather: float = 1.0
    max_side: int = 512


class CutAndPaste(AnnotatedFrames):
    def __init__(self, videos: VideoClipSource, count: int, options: PasteOptions | None = None,
                 augmentation: ViewAugmentation = STRONG_AUGMENTATION):
        super().__init__(videos)
        if count < 1:
            raise InputError(f"cut-and-paste count must be positive, got {count}")
        if len(videos.videos) < 2:
            raise InputError("cut-and-paste needs at least two videos (object and background "
                             "come from different ones)")
        self.count = count
        self.options = options or PasteOptions()
        self.augmentation = augmentation
        self.camera = ViewAugmentation(blur_prob=0.2, brightness=0.15, contrast=0.15)

    def __len__(self) -> int:
        return self.count

    def _other_video_frame(self, video: int, rng: np.random.Generator) -> int:
        while True:
            index = int(rng.integers(len(self.refs)))
            if self.video_of(index) != video:
                return index

    def moving_layer(self, image: np.ndarray, mask: np.ndarray, shape: tuple[int, int],
                     rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Three (image, alpha) layers of an object in a frame of ``shape``: augmented
        views, shifted to a random place and drifting."""
        h, w = shape
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        views = augment_views(image, mask, rng, self.augmentation)
        ys, xs = np.nonzero(mask)
        target = rng.uniform(0.2, 0.8, 2) * (w, h)
        offset = target - (xs.mean(), ys.mean())
        drift = rng.uniform(-self.options.drift, self.options.drift, 2) * (w, h)
        layers = []
        for t, view in enumerate(views):
            shift = np.float64([[1, 0, offset[0] + t * drift[0]], [0, 1, offset[1] + t * drift[1]]])
            moved = cv2.warpAffine(view.image, shift, (w, h), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(view.mask.astype(np.float32), shift, (w, h), flags=cv2.INTER_LINEAR)
            if self.options.feather > 0:
                alpha = cv2.GaussianBlur(alpha, (0, 0), self.options.feather)
            layers.append((moved, alpha))
        return layers

    def clip(self, index: int, rng: np.random.Generator, attempts: int = 10) -> Clip:
        opts = self.options
        for _ in range(attempts):
            obj_index = int(rng.integers(len(self.refs)))
            image, mask, name = self.object(obj_index, rng)
            video = self.video_of(obj_index)
            background, _, bg_name = self.object(self._other_video_frame(video, rng), rng)
            scale = min(1.0, opts.max_side / max(background.shape[:2]))
            if scale < 1.0:  # composites at reduced size: the crops downsample them anyway
                background = cv2.resize(background, None, fx=scale, fy=scale,
                                        interpolation=cv2.INTER_AREA)
            shape = background.shape[:2]
            target = self.moving_layer(image, mask, shape, rng)
            behind, front = [], []
            if rng.random() < opts.distractor_prob:
                if rng.random() < opts.copy_distractor_prob:
                    behind.append(self.moving_layer(image, mask, shape, rng))
                else:
                    other, other_mask, _ = self.object(self._other_video_frame(video, rng), rng)
                    behind.append(self.moving_layer(other, other_mask, shape, rng))
            if rng.random() < opts.occluder_prob:
                other, other_mask, _ = self.object(self._other_video_frame(video, rng), rng)
                front.append(self.moving_layer(other, other_mask, shape, rng))
            frames, masks = self._compose(background, behind, target, front, rng)
            if masks[0].sum() >= self.videos.min_pixels:
                return Clip(frames, masks, name=f"paste:{name}/on:{bg_name}")
        raise InputError(f"cut-and-paste clip {index}: target hidden after {attempts} draws")

    def _compose(self, background, behind, target, front, rng):
        h, w = background.shape[:2]
        shake = rng.uniform(-self.options.camera_shift, self.options.camera_shift, (3, 2)) * (w, h)
        frames, masks = [], []
        for t in range(3):
            camera = np.float64([[1, 0, shake[t, 0]], [0, 1, shake[t, 1]]])
            frame = cv2.warpAffine(background, camera, (w, h),
                                   borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
            for layer in behind:
                frame = _blend(frame, *layer[t])
            frame = _blend(frame, *target[t])
            visible = target[t][1]
            for layer in front if t > 0 else []:
                frame = _blend(frame, *layer[t])
                visible = visible * (1.0 - layer[t][1])
            frames.append(photometric(np.clip(frame + 0.5, 0, 255).astype(np.uint8), rng, self.camera))
            masks.append(visible >= 0.5)
        return frames, masks


def _blend(frame: np.ndarray, image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return frame * (1.0 - alpha[..., None]) + image.astype(np.float32) * alpha[..., None]
