"""Real-time simulation of the working VOT experiments (no tracker process needed)."""
import pytest

pytest.importorskip("vot")
from vot.region import Rectangle  # noqa: E402
from vot.tracker import ObjectStatus  # noqa: E402

from samn_tracker.vot.experiments import DirectSession, RealtimeSession  # noqa: E402


class SlowRuntime:
    """Online runtime stand-in: answers with the frame number after ``elapsed`` seconds,
    and insists on the list arguments the TraX runtime requires."""

    def __init__(self, elapsed: float):
        self.elapsed = elapsed
        self.calls = []

    def initialize(self, frame, new):
        assert isinstance(new, list) and len(new) == 1
        self.calls.append(frame)
        return [ObjectStatus(Rectangle(frame, 0, 1, 1), {"confidence": "1"})], self.elapsed

    def update(self, frame, new):
        assert new == []
        self.calls.append(frame)
        return [ObjectStatus(Rectangle(frame, 0, 1, 1), {})], self.elapsed


def test_direct_session_unwraps_single_object():
    runtime = SlowRuntime(0.01)
    session = DirectSession(runtime)
    status, elapsed = session.initialize(0, ObjectStatus(Rectangle(0, 0, 1, 1), {}))
    assert status.region.x == 0 and status.properties == {"confidence": "1"} and elapsed == 0.01
    assert session.update(1)[0].region.x == 1


def test_realtime_session_skips_frames_of_a_slow_tracker_after_the_grace_period():
    # 0.25 s per frame at 10 fps: the first `grace` = 1 slow answer is forgiven; after that
    # each answer leaves 0.15 s of debt, paid by repeating the previous state for one frame
    # (the toolkit's rule: skip while the debt exceeds one interval).
    runtime = SlowRuntime(0.25)
    session = RealtimeSession(runtime, grace=1, interval=0.1)
    session.initialize(0, ObjectStatus(Rectangle(0, 0, 1, 1), {}))
    reported = [session.update(frame)[0].region.x for frame in range(1, 8)]
    assert reported == [1, 1, 3, 3, 5, 5, 7]
    assert runtime.calls == [0, 1, 3, 5, 7]


def test_realtime_session_fast_tracker_sees_every_frame():
    runtime = SlowRuntime(0.01)
    session = RealtimeSession(runtime, grace=0, interval=0.1)
    session.initialize(0, ObjectStatus(Rectangle(0, 0, 1, 1), {}))
    assert [session.update(f)[0].region.x for f in range(1, 5)] == [1, 2, 3, 4]


def test_the_reset_protocol_fails_at_no_overlap_and_starts_again_five_frames_on():
    """The toolkit's supervised rule: a frame whose overlap is at most ``failure_overlap``
    (0) is a failure, and the tracker starts again ``skip_initialize`` (5) frames later;
    the end-to-end runs never fail, so their loop over failures checked nothing."""
    import types

    from vot.analysis import is_special
    from vot.tracker import Trajectory

    from samn_tracker.vot.experiments import SupervisedExperiment

    class Sequence:
        size = (100, 100)

        def __len__(self):
            return 12

        def groundtruth(self, index=None):
            return Rectangle(10, 10, 20, 20)

        def frame(self, index):
            return index

        def tags(self, index):
            return []

    class Runtime:
        def initialize(self, frame, new):
            return [ObjectStatus(new[0].region, {})], 0.01

        def update(self, frame, new):  # frame 4 lost: overlap 0
            return [ObjectStatus(Rectangle(60, 60, 20, 20) if frame == 4 else Rectangle(10, 10, 20, 20), {})], 0.01

    experiment = types.SimpleNamespace(failure_overlap=0.0, skip_initialize=5, skip_tags=(),
                                       FAILURE=Trajectory.FAILURE)
    experiment._restart_frame = lambda sequence, frame: SupervisedExperiment._restart_frame(experiment, sequence, frame)
    regions = SupervisedExperiment._run(experiment, DirectSession(Runtime()), Sequence()).regions()
    kinds = ["I" if is_special(r, Trajectory.INITIALIZATION) else "F" if is_special(r, Trajectory.FAILURE)
             else "?" if is_special(r) else "r" for r in regions]
    assert "".join(kinds) == "IrrrF????Irr"
