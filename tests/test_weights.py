import hashlib
from pathlib import Path

import pytest
import torch

from samn_tracker import weights
from samn_tracker.config import TrackerConfig, preset
from samn_tracker.errors import InputError
from samn_tracker.weights import (DownloadError, WeightFile, builtin_checkpoint, cache_dir,
                                  fetch, load_checkpoint, save_checkpoint, sha256_file)


@pytest.fixture
def source(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "src" / "model.bin"
    path.parent.mkdir()
    path.write_bytes(bytes(range(256)) * 5000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256_and_cache_dir(source, monkeypatch, tmp_path):
    path, digest = source
    assert sha256_file(path) == digest
    monkeypatch.setenv("SAMN_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SAMN_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "samn_tracker"


@pytest.mark.parametrize("digits", [64, 8])
def test_fetch_verifies_and_caches(source, tmp_path, digits):
    path, digest = source
    spec = WeightFile("model.bin", path.as_uri(), digest[:digits].upper())
    out_dir = tmp_path / "cache"
    got = fetch(spec, out_dir, progress=False)
    assert got == out_dir / "model.bin"
    assert got.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in out_dir.iterdir()) == ["model.bin"]
    path.unlink()  # a second call must not need the source
    assert fetch(spec, out_dir, progress=False) == got


def test_fetch_uses_cache_dir_by_default(source, tmp_path, monkeypatch):
    path, digest = source
    monkeypatch.setenv("SAMN_CACHE", str(tmp_path / "env_cache"))
    got = fetch(WeightFile("model.bin", path.as_uri(), digest), progress=False)
    assert got == tmp_path / "env_cache" / "model.bin"


def test_fetch_replaces_corrupt_cached_file(source, tmp_path):
    path, digest = source
    out_dir = tmp_path / "cache"
    out_dir.mkdir()
    (out_dir / "model.bin").write_bytes(b"truncated")
    got = fetch(WeightFile("model.bin", path.as_uri(), digest), out_dir, progress=False)
    assert sha256_file(got) == digest


def test_fetch_wrong_hash_raises_and_leaves_nothing(source, tmp_path):
    path, digest = source
    wrong = "0" * 64
    out_dir = tmp_path / "cache"
    with pytest.raises(InputError) as info:
        fetch(WeightFile("model.bin", path.as_uri(), wrong), out_dir, progress=False)
    message = str(info.value)
    assert path.as_uri() in message and digest in message and wrong in message
    assert list(out_dir.iterdir()) == []


def test_fetch_unreachable_url_says_where_to_put_the_file(tmp_path):
    spec = WeightFile("model.bin", (tmp_path / "nowhere.bin").as_uri(), "ab" * 4)
    with pytest.raises(DownloadError, match=str(tmp_path / "cache" / "model.bin")):
        fetch(spec, tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_rejects_malformed_hash(source, tmp_path):
    path, _ = source
    with pytest.raises(InputError, match="xyz"):
        fetch(WeightFile("model.bin", path.as_uri(), "xyz"), tmp_path, progress=False)


def test_resnet50_spec_matches_torchvision_name():
    spec = weights.RESNET50_IMAGENET
    assert spec.url.endswith("/" + spec.name) and spec.sha256 in spec.name


def test_checkpoint_round_trip(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    config = preset("lite").replace(**{"memory.interval": 10})
    path = tmp_path / "run" / "ckpt.pth"
    save_checkpoint(path, state, config, epoch=3, note="stage 2")
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pth"]
    loaded = load_checkpoint(path)
    assert loaded["state_dict"].keys() == state.keys()
    assert all(torch.equal(loaded["state_dict"][k], v) for k, v in state.items())
    assert TrackerConfig.from_dict(loaded["config"]) == config
    assert loaded["meta"] == {"epoch": 3, "note": "stage 2"}


def test_checkpoint_without_config_and_bare_state_dict(tmp_path):
    save_checkpoint(tmp_path / "a.pth", {"w": torch.ones(2)})
    assert load_checkpoint(tmp_path / "a.pth")["config"] is None
    torch.save({"w": torch.ones(2)}, tmp_path / "bare.pth")
    bare = load_checkpoint(tmp_path / "bare.pth")
    assert bare["config"] is None and torch.equal(bare["state_dict"]["w"], torch.ones(2))


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.pth"):
        load_checkpoint(tmp_path / "missing.pth")
    save_checkpoint(tmp_path / "good.pth", {"w": torch.ones(1000)})
    data = (tmp_path / "good.pth").read_bytes()
    (tmp_path / "corrupt.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt.pth"):
        load_checkpoint(tmp_path / "corrupt.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(InputError, match="list.pth"):
        load_checkpoint(tmp_path / "list.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    torch.save({"code": print}, tmp_path / "pickled.pth")
    for name in ("text.pth", "pickled.pth"):
        with pytest.raises(InputError) as error:
            load_checkpoint(tmp_path / name)
        message = str(error.value)
        assert name in message and "\n" not in message and "weights_only" not in message


def test_builtin_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "BUILTIN_CHECKPOINTS_DIR", tmp_path)
    assert builtin_checkpoint("lite") is None
    save_checkpoint(tmp_path / "lite.pth", {"w": torch.ones(1)})
    assert builtin_checkpoint("lite") == tmp_path / "lite.pth"
    assert builtin_checkpoint("lite", "query") is None
    save_checkpoint(tmp_path / "lite-query.pth", {"w": torch.ones(1)})
    assert builtin_checkpoint("lite", "query") == tmp_path / "lite-query.pth"
    with pytest.raises(InputError):
        builtin_checkpoint("../lite")
