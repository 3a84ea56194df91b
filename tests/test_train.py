"""A short real training run: loss goes down, checkpoints resume, configs are validated."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from samn_tracker.train.cli import main as train_main
from samn_tracker.weights import load_checkpoint

from test_track_runs import samn_command


def read_losses(path):
    with open(path) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_smoke_training_reduces_the_loss_and_resumes(davis_root, tmp_path, capsys):
    out = tmp_path / "run"
    sources = json.dumps([f"davis:{davis_root}:2016:train"])
    common = ["--config", "lite_cpu", "--samples", "64", "--set", f"sources={sources}",
              "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2",
              "--set", "lr=0.001", "--set", "workers=0", "--set", f"out_dir={out}",
              "--set", "checkpoint_every=10"]
    assert train_main(common + ["--set", "steps=40"]) == 0
    assert "40/40" in capsys.readouterr().err  # the progress bar
    losses = read_losses(out / "log.csv")
    assert len(losses) == 40
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:10]) / 10
    ckpt = load_checkpoint(out / "last.pth")
    assert ckpt["meta"]["step"] == 40 and ckpt["config"]["model"]["backbone"] == "efficientnet_lite0"

    export = tmp_path / "lite.pth"
    assert train_main(common + ["--set", "steps=45", "--resume", "--export", str(export), "--no-progress"]) == 0
    assert "45/45" not in capsys.readouterr().err
    assert len(read_losses(out / "log.csv")) == 45
    shipped = load_checkpoint(export)
    assert "optimiser" not in shipped["meta"] and shipped["meta"]["step"] == 45
    assert not any(k.startswith("query_encoder.backbone.") for k in shipped["state_dict"])


def test_the_shipped_cpu_config_reads_its_data_under_data_root(davis_root, tmp_path, monkeypatch):
    """lite_cpu's sources are relative to --data-root (a folder holding davis16/), not to the
    folder the command runs in."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert train_main(["--config", "lite_cpu", "--data-root", str(davis_root.parent), "--samples", "4",
                       "--set", "steps=1", "--set", "crop_size=64", "--set", "batch_size=2", "--set", "workers=0",
                       "--set", f"out_dir={out}", "--no-progress"]) == 0
    assert len(read_losses(out / "log.csv")) == 1


def test_backbone_tail_trains_and_ships_only_the_last_blocks(davis_root, tmp_path, capsys):
    import torch

    from samn_tracker.config import preset
    from samn_tracker.model.network import SAMNNetwork

    out = tmp_path / "run"
    sources = json.dumps([f"davis:{davis_root}:2016:train"])
    common = ["--config", "lite_cpu", "--samples", "16", "--set", f"sources={sources}",
              "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2",
              "--set", "workers=0", "--set", f"out_dir={out}", "--set", "train_backbones=False"]
    assert train_main(common + ["--set", "steps=2"]) == 0
    assert train_main(common + ["--set", "steps=4", "--set", "train_backbone_tail=2", "--resume"]) == 0
    assert "Adam's moments start afresh" in capsys.readouterr().err  # more parameters train now
    state = load_checkpoint(out / "last.pth")["state_dict"]
    backbone_keys = {k.split(".")[0] + "." + k.split(".")[3] for k in state if ".backbone." in k}
    assert backbone_keys == {"query_encoder.9", "query_encoder.10", "memory_encoder.9", "memory_encoder.10"}
    trained = preset("lite").replace(**{"model.memory_pass": "backbone"}).model  # what samn train trains
    imagenet, loaded = SAMNNetwork(trained), SAMNNetwork(trained)
    loaded.load_trained(state, out / "last.pth")
    key = "query_encoder.backbone._blocks.10._project_conv.weight"
    assert not torch.equal(state[key], imagenet.state_dict()[key])  # it trained
    assert torch.equal(loaded.state_dict()[key], state[key])       # and a tracker loads it
    frozen = "query_encoder.backbone._blocks.8._project_conv.weight"
    assert torch.equal(loaded.state_dict()[frozen], imagenet.state_dict()[frozen])
    assert train_main(common + ["--set", "steps=5", "--set", "train_backbone_tail=12", "--resume"]) == 2
    assert "train_backbone_tail=12 is not allowed: expected at most 11" in capsys.readouterr().err


def test_the_query_memory_pass_trains_end_to_end_without_a_memory_backbone(davis_root, tmp_path):
    """``memory_pass=query``: the light memory pass trains with the decoder (frame 1 is
    memorised from its query features), and its checkpoint loads into a tracker."""
    import torch

    from samn_tracker.config import TrackerConfig
    from samn_tracker.model.network import SAMNNetwork
    from samn_tracker.tracker import SAMNTracker

    out = tmp_path / "run"
    sources = json.dumps([f"davis:{davis_root}:2016:train"])
    assert train_main(["--config", "lite_cpu", "--samples", "8", "--set", f"sources={sources}",
                       "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2",
                       "--set", "workers=0", "--set", f"out_dir={out}", "--set", "train_backbones=False",
                       "--set", "memory_pass=query", "--set", "steps=3", "--set", "lr=0.01"]) == 0
    ckpt = load_checkpoint(out / "last.pth")
    config = TrackerConfig.from_dict(ckpt["config"])
    assert config.model.memory_pass == "query"
    state = ckpt["state_dict"]
    assert "memory_encoder.fuse.0.weight" in state and not any(".backbone." in k for k in state)
    torch.manual_seed(0)  # the run's seed: the weights it started from
    start = SAMNNetwork(config.model).state_dict()["memory_encoder.fuse.0.weight"]
    assert not torch.equal(state["memory_encoder.fuse.0.weight"], start)  # it trained
    tracker = SAMNTracker(config, weights=out / "last.pth", device="cpu")
    assert torch.equal(tracker.net.memory_encoder.fuse[0].weight, state["memory_encoder.fuse.0.weight"])


def test_training_refuses_eval_sequences_and_unknown_options(davis_root, tmp_path, capsys):
    bad = json.dumps([f"davis:{davis_root}:2016:eval"])
    assert train_main(["--config", "lite_cpu", "--set", f"sources={bad}",
                       "--set", f"out_dir={tmp_path}"]) == 2
    assert "blackswan" in capsys.readouterr().err
    assert not (tmp_path / "log.csv").exists()
    # All eight shared sequences are DAVIS 2016 *val*: a recipe that holds that set out
    # refuses even the four its splits.txt calls train, in every kind of source.
    for kind in ("davis", "davis-stills", "davis-paste"):
        shared_train = json.dumps([f"{kind}:{davis_root}:2016:train"])
        assert train_main(["--config", "lite_cpu", "--set", f"sources={shared_train}",
                           "--set", 'held_out=["davis2016-val"]', "--set", f"out_dir={tmp_path}"]) == 2
        err = capsys.readouterr().err
        assert "breakdance" in err and "held-out" in err
    assert not (tmp_path / "log.csv").exists()
    assert train_main(["--config", "lite_cpu", "--set", "no_such_option=1"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    for bad_value in ("centre_jitter=-0.5", "query_value_dropout=1.5"):
        assert train_main(["--config", "lite_cpu", "--set", bad_value]) == 2
        assert bad_value in capsys.readouterr().err


def test_an_out_dir_that_cannot_be_a_folder_is_refused_before_work(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        assert train_main(["--config", "lite_cpu", "--set", f"out_dir={out}"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"out_dir {out}" in err and "is a file" in err, err


def test_resume_refuses_changed_settings_unless_allowed(tmp_path, capsys):
    """The checkpoint records the run's settings; a resume may change only RESUMABLE ones."""
    from samn_tracker.train.cli import resolve_config
    from samn_tracker.train.run_loop import check_resumed_settings
    from samn_tracker.train.trainer import TrainConfig
    from samn_tracker.weights import save_checkpoint

    out = tmp_path / "run"
    run = TrainConfig.from_json(resolve_config("lite_cpu")).replace(out_dir=str(out), steps=2)
    save_checkpoint(out / "last.pth", {}, step=2, train=run.to_dict())
    common = ["--config", "lite_cpu", "--resume", "--set", f"out_dir={out}", "--set", "steps=2"]
    changed = ["--set", "crop_size=128", "--set", "batch_size=3", "--set", "seed=5", "--set", "train_backbones=true"]
    assert train_main(common + changed + ["--set", "lr=0.1", "--set", "workers=0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--allow-changes" in err, err
    for said in ("crop_size 192 -> 128", "batch_size 4 -> 3", "seed 0 -> 5", "train_backbones False -> True",
                 "--set batch_size=4 --set crop_size=192 --set train_backbones=False --set seed=0"):
        assert said in err, err
    assert "lr " not in err and "workers " not in err
    settings = run.replace(crop_size=128, lr=0.1).to_dict()
    check_resumed_settings(out, settings, lambda meta: meta["train"], allow_changes=True)
    note = capsys.readouterr().err
    assert note.startswith("samn: note: resuming ") and "crop_size 192 -> 128" in note and "lr " not in note
    assert train_main(["--config", "lite_cpu", "--allow-changes"]) == 2
    assert "--resume only" in capsys.readouterr().err


def test_synthetic_and_saliency_sources_refuse_held_out_and_eval_sequences(davis_root, tmp_path, capsys):
    """A copy of an eval sequence outside its tree is still refused by the held_out names,
    a saliency pair made of an eval sequence's frames by splits.txt and by held_out."""
    copy = tmp_path / "copy" / "JPEGImages" / "480p"
    shutil.copytree(davis_root / "JPEGImages" / "480p" / "blackswan", copy / "blackswan")
    frames, masks = (davis_root / kind / "480p" / "blackswan" for kind in ("JPEGImages", "Annotations"))
    for source, held_out, why in ((f"synthetic:{copy}:4", '["davis2016-val"]', "held_out"),
                                  (f"saliency:{frames}:{masks}", '["davis2016-val"]', "held_out"),
                                  (f"saliency:{frames}:{masks}", "[]", "splits.txt"),
                                  (f"synthetic:{frames}:4", "[]", "splits.txt")):
        assert train_main(["--config", "lite_cpu", "--samples", "8", "--set", f"sources={json.dumps([source])}",
                           "--set", "source_weights=[]", "--set", f"held_out={held_out}",
                           "--set", f"out_dir={tmp_path / 'run'}"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "blackswan" in err and why in err, err
        assert "no photos" not in err
    assert not (tmp_path / "run").exists()


def test_every_path_of_a_source_is_taken_from_data_root_and_a_davis_tree_gives_photos_not_masks(davis_root, tmp_path):
    """paper_stage1's coco:COCO/train2017:COCO/annotations/... with --data-root /data read the
    json from the working folder; synthetic over a whole DAVIS tree took its masks for photos."""
    from samn_tracker.train.sources import build_source

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    shutil.copy(davis_root / "JPEGImages" / "480p" / "car-shadow" / "00000.jpg", tmp_path / "images" / "a.jpg")
    shutil.copy(davis_root / "Annotations" / "480p" / "car-shadow" / "00000.png", tmp_path / "masks" / "a.png")
    assert len(build_source("saliency:images:masks", tmp_path)) == 1
    photos = build_source(f"synthetic:{davis_root}:2").photos
    assert photos and all(p.suffix == ".jpg" and "JPEGImages" in p.parts for p in photos)


def test_only_a_run_that_held_out_davis16_val_becomes_the_builtin_checkpoint(davis_root, tmp_path, capsys):
    """Refused on export, and by ``--export`` before the run takes a step."""
    from samn_tracker.errors import InputError
    from samn_tracker.train.trainer import export_checkpoint
    from samn_tracker.weights import BUILTIN_CHECKPOINTS_DIR

    out = tmp_path / "run"
    sources = json.dumps([f"davis:{davis_root}:2016:train"])
    run = ["--config", "lite_cpu", "--samples", "8", "--set", f"sources={sources}", "--set", "source_weights=[]",
           "--set", "crop_size=64", "--set", "steps=1", "--set", "batch_size=1", "--set", f"out_dir={out}"]
    builtin = BUILTIN_CHECKPOINTS_DIR / "refused-by-test.pth"
    assert train_main(run + ["--export", str(builtin)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "davis2016-val" in err, err
    assert not out.exists() and not builtin.exists()
    assert train_main(run) == 0
    with pytest.raises(InputError, match="davis2016-val"):
        export_checkpoint(out / "last.pth", builtin)
    assert not builtin.exists()
    export_checkpoint(out / "last.pth", tmp_path / "elsewhere.pth")  # outside the package: fine


def test_sigterm_saves_the_step_reached(davis_root, tmp_path):
    out = tmp_path / "run"
    sources = json.dumps([f"davis:{davis_root}:2016:train"])
    cmd = samn_command("train", "--config", "lite_cpu", "--samples", "64",
                       "--set", f"sources={sources}", "--set", "source_weights=[]", "--set", "crop_size=64",
                       "--set", "batch_size=1", "--set", "workers=0", "--set", f"out_dir={out}",
                       "--set", "checkpoint_every=1000", "--set", "steps=100000")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = out / "log.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(read_losses(log)) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    said, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.splitlines()[-1].startswith("samn train: terminated at step ") and "--resume" in err
    done = load_checkpoint(out / "last.pth")["meta"]["step"]
    assert done >= 3 and done == len(read_losses(log))
    assert f"this run: {done} steps in " in said and "waiting for data" in said


def test_bad_data_met_by_a_worker_is_one_line_and_leaves_no_run_behind(davis_root, tmp_path):
    """DAVIS 2016 masks read as 2017 (``davis:ROOT``'s default year) fail in the first step's
    data worker: one line, the process exits (workers ignore SIGTERM, so before it waited for
    them for ever), and the folder holds no step-0 run that would refuse the corrected command."""
    out = tmp_path / "run"
    cmd = samn_command("train", "--config", "lite_cpu", "--samples", "8",
                       "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=1",
                       "--set", "workers=1", "--set", f"out_dir={out}", "--set", "steps=1", "--no-progress")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    failed = subprocess.run(cmd + ["--set", f"sources={json.dumps([f'davis:{davis_root}'])}"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "0/255 binary mask" in failed.stderr and "davis:ROOT:2016" in failed.stderr
    assert not list(out.glob("*"))
    fixed = subprocess.run(cmd + ["--set", f"sources={json.dumps([f'davis:{davis_root}:2016'])}"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    assert len(read_losses(out / "log.csv")) == 1


def test_query_value_dropout_makes_the_decoder_segment_from_the_memory_read(davis_root):
    """With the query value dropped, a frame's logits no longer depend on the query value
    head (only on the memory read and the skips); kept, they do."""
    import torch

    from samn_tracker.config import preset
    from samn_tracker.datasets.davis import annotation_file, frame_files, read_annotation
    from samn_tracker.datasets.images import read_image
    from samn_tracker.model.network import SAMNNetwork
    from samn_tracker.train.trainer import ClipModel

    files = frame_files(davis_root, "cows")
    crop = (slice(100, 228), slice(160, 288))  # 128 x 128 over the cow's left edge
    images = torch.stack([torch.from_numpy(read_image(files[i])[crop].copy()).permute(2, 0, 1).float() / 255
                          for i in (0, 3, 6)])[None]
    mask0 = read_annotation(annotation_file(davis_root, "cows", "480p", files[0]))[crop] > 0
    mask0 = torch.from_numpy(mask0.copy()).float()[None, None]
    maps = [torch.zeros(1, 1, 8, 8)] * 2
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").model).eval()
    model = ClipModel(net)
    dropped, kept = [torch.zeros(1)] * 2, [torch.ones(1)] * 2
    with torch.no_grad():
        before = {name: model(images, mask0, maps, keep) for name, keep in
                  (("dropped", dropped), ("kept", kept))}
        net.query_encoder.value.weight.mul_(3.0)
        after = {name: model(images, mask0, maps, keep) for name, keep in
                 (("dropped", dropped), ("kept", kept))}
    assert torch.allclose(before["dropped"][0], after["dropped"][0], atol=1e-5)
    assert not torch.allclose(before["kept"][0], after["kept"][0], atol=1e-3)


def test_backbone_keys_train_the_decoder_and_leave_the_key_heads_out(davis_root):
    """``key_source=backbone`` (TrainConfig / ModelConfig): the clip model reads the memory by the
    backbone's features of frame 0 and frame 1, so the loss reaches the decoder and the
    value heads but not the key heads."""
    import torch

    from samn_tracker.config import preset
    from samn_tracker.datasets.davis import annotation_file, frame_files, read_annotation
    from samn_tracker.datasets.images import read_image
    from samn_tracker.model.network import SAMNNetwork
    from samn_tracker.train.trainer import ClipModel

    files = frame_files(davis_root, "cows")
    crop = (slice(100, 228), slice(160, 288))
    images = torch.stack([torch.from_numpy(read_image(files[i])[crop].copy()).permute(2, 0, 1).float() / 255
                          for i in (0, 3, 6)])[None]
    mask0 = read_annotation(annotation_file(davis_root, "cows", "480p", files[0]))[crop] > 0
    mask0 = torch.from_numpy(mask0.copy()).float()[None, None]
    torch.manual_seed(0)
    net = SAMNNetwork(preset("lite").model.replace(key_source="backbone"))
    outputs = ClipModel(net)(images, mask0, [torch.zeros(1, 1, 8, 8)] * 2)
    sum(o.square().mean() for o in outputs).backward()
    assert net.query_encoder.key.weight.grad is None and net.memory_encoder.key.weight.grad is None
    assert net.memory_encoder.value.weight.grad.abs().sum() > 0
    assert net.decoder.parameters().__next__().grad is not None


def test_data_workers_feed_a_gpu_from_the_spare_cores_and_leave_a_cpu_to_the_step():
    import torch

    from samn_tracker.train.trainer import data_workers

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert data_workers(3, gpu, 1, 16) == 3 and data_workers(0, gpu, 1, 16) == 0  # as asked
    assert data_workers(None, cpu, 1, 16) == 0
    assert data_workers(None, gpu, 1, 16) == 14         # the H100 machine's 16 cores
    assert data_workers(None, gpu, 8, 16) == 1          # torchrun: eight ranks share them
    assert data_workers(None, gpu, 1, 64) == 16         # at most 16 per rank
    assert data_workers(None, gpu, 1, 2) == 0 and data_workers(None, gpu, 1, None) == 0


def loop_files(out):
    from samn_tracker.train.run_loop import RunFiles

    return RunFiles(out, ["iou"], save=lambda at: None, plot=lambda log, curve: None)


class EpochDataset(torch.utils.data.Dataset):
    """Samples that are their index, and the epoch the loop last gave the dataset."""

    def __init__(self, size: int):
        self.size, self.epoch = size, None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def draw_epochs(out, step, steps, batches=3):
    """(epoch, batch) of every step run_steps takes from ``step`` to ``steps``."""
    from samn_tracker.train.run_loop import EpochOrder, StepResult, run_steps

    dataset = EpochDataset(batches)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, sampler=EpochOrder(batches, 7))
    drawn = []
    run_steps(loader, step, steps, lambda b, at: drawn.append((dataset.epoch, int(b))) or StepResult(0.5, ["0.1"]),
              loop_files(out), checkpoint_every=100, progress=False)
    return drawn


def test_a_resumed_run_draws_the_epochs_of_an_uninterrupted_one(tmp_path):
    """The same epoch at every step (the curriculum and sample order follow the epoch)."""
    epochs = [e for e, _ in draw_epochs(tmp_path / "a", 0, 8)]
    resumed = draw_epochs(tmp_path / "b", 0, 4) + draw_epochs(tmp_path / "b", 4, 8)
    assert [e for e, _ in resumed] == epochs == [0, 0, 0, 1, 1, 1, 2, 2]
    assert resumed == draw_epochs(tmp_path / "c", 0, 8)  # and the same samples, in the same order


def test_a_resumed_run_takes_the_steps_of_an_uninterrupted_one(davis_root, tmp_path):
    """Stopped mid-epoch and resumed, training ends with the weights and losses of a run
    never stopped: each epoch's order depends on the epoch alone (EpochOrder, skipped to
    where the run stopped) and each step's draws on its number."""
    sources = json.dumps([f"davis:{davis_root}:2016:train"])

    def run(out, steps, *extra):
        assert train_main(["--config", "lite_cpu", "--samples", "10", "--set", f"sources={sources}",
                           "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2",
                           "--set", "workers=0", "--set", f"out_dir={out}", "--set", f"steps={steps}",
                           "--set", "checkpoint_every=100", "--no-progress", *extra]) == 0

    run(tmp_path / "whole", 8)            # epochs of 5 batches: the stop falls inside the first
    run(tmp_path / "cut", 3)
    run(tmp_path / "cut", 8, "--resume")
    assert read_losses(tmp_path / "cut" / "log.csv") == read_losses(tmp_path / "whole" / "log.csv")
    whole, cut = (load_checkpoint(tmp_path / name / "last.pth")["state_dict"] for name in ("whole", "cut"))
    assert whole.keys() == cut.keys() and all(whole[k].equal(cut[k]) for k in whole)


def test_epoch_order_is_that_of_distributed_sampler_and_skips_what_a_run_took():
    from torch.utils.data import DistributedSampler

    from samn_tracker.train.run_loop import EpochOrder

    for size, world in ((10, 1), (10, 3), (2, 5)):  # more ranks than samples: padded by repeats
        for rank in range(world):
            ours, theirs = EpochOrder(size, 7, rank, world), DistributedSampler(range(size), world, rank, seed=7)
            for epoch in (0, 1):
                ours.set_epoch(epoch)
                theirs.set_epoch(epoch)
                assert list(ours) == list(theirs) and len(ours) == len(theirs)
    order = EpochOrder(10, 7)
    order.set_epoch(1, skip=4)
    whole = EpochOrder(10, 7)
    whole.set_epoch(1)
    assert list(order) == list(whole)[4:] and len(order) == 10


def test_resume_drops_log_rows_a_hard_kill_left_after_the_checkpoint(tmp_path):
    draw_epochs(tmp_path, 0, 5)
    assert [r["step"] for r in csv.DictReader(open(tmp_path / "log.csv"))] == list("12345")
    draw_epochs(tmp_path, 3, 6)  # the checkpoint was at step 3
    assert [r["step"] for r in csv.DictReader(open(tmp_path / "log.csv"))] == list("123456")


def test_run_options_are_checked_before_training(davis_root, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--config", "lite_cpu", "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2",
            "--set", "workers=0", "--set", f"out_dir={out}", "--no-progress", "--samples", "8"]
    common = base + ["--set", f"sources={json.dumps([f'davis:{davis_root}:2016:train'])}"]
    for bad, says in ((["--samples", "0"], "--samples 0"), (["--samples", "-5"], "--samples -5"),
                      (["--export", str(tmp_path)], "is a folder"), (["--set", "steps=0"], "steps=0")):
        assert train_main(common + bad) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and says in err, err
    # a GPU not there is said before the sources are read (here one that is not there either)
    nowhere = ["--set", "sources=" + json.dumps([f"davis:{tmp_path / 'nowhere'}:2016:train"])]
    assert train_main(base + nowhere + ["--set", "device=cuda:99"]) == 2
    assert "device 'cuda:99' is not available" in capsys.readouterr().err
    for source in (f"davis:{davis_root}:20x16", f"davis-paste:{davis_root}:2016:train:abc",
                   f"synthetic:{davis_root}:many"):
        assert train_main(base + ["--set", f"sources={json.dumps([source])}"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "is not a whole number" in err, err
    assert not out.exists()
    assert train_main(common + ["--set", "steps=2", "--resume"]) == 0
    assert f"samn train: note: no checkpoint in {out}: starting at step 0" in capsys.readouterr().err
    assert train_main(common + ["--set", "steps=2"]) == 2  # a fresh run into a run's folder
    assert "add --resume" in capsys.readouterr().err
    assert train_main(common + ["--set", "steps=1", "--resume"]) == 0
    assert "samn train: note: already at step 2 of 1: nothing to do" in capsys.readouterr().err
    assert len(read_losses(out / "log.csv")) == 2


def heads_run(davis_root, out) -> list[str]:
    """A run of a few 64-pixel clips from the shared sequences that trains the heads only."""
    return ["--config", "lite_cpu", "--set", f"sources={json.dumps([f'davis:{davis_root}:2016:train'])}",
            "--set", "source_weights=[]", "--set", "crop_size=64", "--set", "batch_size=2", "--samples", "8",
            "--set", "workers=0", "--set", f"out_dir={out}", "--no-progress", "--set", "train_backbones=False"]


def test_weights_of_another_model_are_refused_with_the_setting_that_fits(davis_root, tmp_path, capsys):
    """init_weights from the shipped query-pass model, and a resume with another memory_pass."""
    from samn_tracker.weights import BUILTIN_CHECKPOINTS_DIR

    out = tmp_path / "run"
    common = heads_run(davis_root, out)
    shipped = BUILTIN_CHECKPOINTS_DIR / "lite-query.pth"
    assert train_main(common + ["--set", f"init_weights={shipped}", "--set", "steps=1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--set memory_pass=query" in err, err
    assert train_main(common + ["--set", "memory_pass=query", "--set", "steps=1"]) == 0
    capsys.readouterr()
    assert train_main(common + ["--set", "steps=2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--set memory_pass=query" in err, err


def test_weights_with_learned_keys_fine_tune_with_backbone_keys(davis_root, tmp_path, capsys):
    """As the tracker loads them: learned-key weights may read (and so train) by backbone keys,
    from init_weights or a resume with --allow-changes (docs/training.md, run C); weights
    trained for backbone keys lack trained key heads, so learned keys are refused."""
    from samn_tracker.weights import BUILTIN_CHECKPOINTS_DIR

    out = tmp_path / "run"
    common = heads_run(davis_root, out)
    shipped = BUILTIN_CHECKPOINTS_DIR / "lite.pth"
    assert train_main(common + ["--set", f"init_weights={shipped}", "--set", "steps=1"]) == 0
    assert train_main(common + ["--set", "key_source=backbone", "--set", "steps=2", "--resume",
                                "--allow-changes"]) == 0
    assert load_checkpoint(out / "last.pth")["config"]["model"]["key_source"] == "backbone"
    capsys.readouterr()
    assert train_main(common + ["--set", "steps=3", "--resume", "--allow-changes"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith("to use it: --set key_source=backbone"), err


def test_the_curve_of_a_short_run_has_whole_steps_and_a_singular_legend(tmp_path):
    import matplotlib.pyplot as plt

    from samn_tracker.train.curves import training_figure

    log = tmp_path / "log.csv"
    log.write_text("step,loss,iou,seconds\n1,4.3,0.1,0.2\n2,3.9,0.2,0.2\n3,3.1,0.3,0.2\n")
    one = tmp_path / "one.csv"  # a run stopped after its first step
    one.write_text("step,loss,iou,seconds\n1,4.3,0.1,0.2\n")
    for written in (log, one):
        fig = training_figure(written)
        fig.canvas.draw()
        for ax in fig.axes:
            assert all(float(t).is_integer() for t in ax.get_xticks())
            assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mean of 1 step"]
            assert ax.lines[1].get_marker() == "o"  # a point that shows, where a line of one has no length
        plt.close(fig)


def test_under_torchrun_only_rank_0_reports_and_exports(tmp_path, capsys, monkeypatch):
    """Every rank returns from training; rank 0 alone wrote the checkpoint, so it alone says
    so and exports it; the others end with the same status and print nothing."""
    from samn_tracker.exits import Terminated
    from samn_tracker.train.cli import end_of_run

    summary = {"run_steps": 3, "seconds": 1.5, "data_wait_seconds": 0.1, "losses": [0.5],
               "steps": 3, "interrupted": None, "checkpoint": str(tmp_path / "missing.pth")}
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert end_of_run(summary, tmp_path / "export.pth", speed=True) == 0  # no export: rank 0's job
    assert end_of_run(dict(summary, interrupted=KeyboardInterrupt), None) == 130
    assert end_of_run(dict(summary, interrupted=Terminated), None) == 143
    assert capsys.readouterr() == ("", "") and not (tmp_path / "export.pth").exists()
    monkeypatch.setenv("RANK", "0")
    assert end_of_run(summary, None, speed=True) == 0
    assert capsys.readouterr().out == ("this run: 3 steps in 1.5 s, 2.00 steps/s, 7% of it waiting for data\n"
                                       f"3 steps, last loss 0.5000 -> {tmp_path / 'missing.pth'}\n")


@pytest.mark.parametrize("changes", [["train_backbone_tail=2", "train_backbones=true"],
                                     ["train_backbone_tail=1", "stage=2"]])
def test_a_backbone_tail_where_the_backbones_are_not_frozen_is_refused(tmp_path, capsys, changes):
    """The tail unfreezes the last blocks of frozen backbones; elsewhere it was silently ignored."""
    assert train_main(["--config", "lite_cpu", "--set", f"out_dir={tmp_path / 'run'}", *changes]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samn train: error: setting train_backbone_tail=") and "0 in stage 2 or with " in err
    assert not (tmp_path / "run").exists()
