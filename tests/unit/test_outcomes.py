from actors.containers import ContainerResult
from actors.outcomes import judge


def verdict(**kw):
    return judge(ContainerResult(container_id="c", **kw), timeout_seconds=5, memory_mb=64)


def test_exit_zero_succeeds():
    v = verdict(exit_code=0)
    assert (v.attempt_outcome, v.run_state, v.reason) == ("succeeded", "succeeded", None)


def test_nonzero_exit_fails_with_code_in_message():
    v = verdict(exit_code=3)
    assert (v.attempt_outcome, v.run_state, v.reason) == ("failed", "failed", "exit_code")
    assert "code 3" in v.message


def test_timeout_wins_over_the_kill_exit_code():
    v = verdict(exit_code=137, timed_out=True)
    assert (v.attempt_outcome, v.run_state) == ("timed_out", "timed_out")


def test_oom_kill_is_its_own_outcome():
    v = verdict(exit_code=137, oom_killed=True)
    assert (v.attempt_outcome, v.run_state, v.reason) == ("oom_killed", "failed", "oom_killed")
    assert "64 MB" in v.message
