"""Progress of long steps: log lines at most every N seconds and at each 10 %, with an estimate; counts only."""

import logging

from tasks.progress import StepProgress


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "test.progress"]


def test_logs_each_ten_percent_and_every_interval_with_an_estimate(caplog):
    caplog.set_level(logging.INFO, logger="test.progress")
    clock = _Clock()
    with StepProgress("probe", 200, "findings", every_s=30, bar=False, logger=logging.getLogger("test.progress"),
                      clock=clock) as progress:
        for _ in range(10):      # 5 %: no line yet
            clock.t += 1.0
            progress(1)
        clock.t += 1.0
        progress(10)             # 10 %
        clock.t += 40.0
        progress(1)              # 10.5 %, but 40 s since the last line
    lines = _lines(caplog)
    assert lines[0] == "probe: started (200 findings)"
    assert lines[1] == "probe: 20/200 findings (10 %), 11 s elapsed, about 99 s left"
    assert lines[2] == "probe: 21/200 findings (10 %), 51 s elapsed, about 7 min 15 s left"
    assert lines[-1] == "probe: 21/200 findings (10 %), 51 s elapsed, about 7 min 15 s left (done)"
    assert len(lines) == 4


def test_unknown_total_logs_counts_only(caplog):
    caplog.set_level(logging.INFO, logger="test.progress")
    clock = _Clock()
    progress = StepProgress("scan", None, "documents", every_s=10, bar=False,
                            logger=logging.getLogger("test.progress"), clock=clock)
    progress(500)
    clock.t = 12
    progress(700)
    progress.close()
    assert _lines(caplog)[1:] == ["scan: 1,200 documents, 12 s elapsed",
                                  "scan: 1,200 documents, 12 s elapsed (done)"]


def test_a_bar_is_drawn_only_on_a_terminal(capsys):
    progress = StepProgress("edit", 3, "targets", logger=logging.getLogger("test.progress"))
    assert progress._bar is None  # pytest's stderr is not a terminal
    forced = StepProgress("edit", 3, "targets", bar=True, logger=logging.getLogger("test.progress"))
    forced(3)
    forced.close()
    assert "edit" in capsys.readouterr().err
