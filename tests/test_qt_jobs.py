"""The jobs layer (diascan.qt.qt_jobs) on real superqt workers: signals, errors as exceptions,
cancel, keep-alive, and the scheduling policy (a load waits, a rescore replaces a rescore,
stale results never reach new data)."""

from __future__ import annotations

import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from diascan.errors import InputError  # noqa: E402
from diascan.qt import qt_jobs  # noqa: E402
from diascan.qt.qt_jobs import Job, QtJobs, error_text  # noqa: E402

pytestmark = pytest.mark.gui


def gated(kind: str, result=None, log=None):
    """A job whose function blocks until ``job.gate`` is set (then returns ``result``)."""
    gate = threading.Event()

    def work(job: Job):
        if log is not None:
            log.append(f"{kind} ran")
        while not gate.wait(0.01):
            job.token.check()
        return result

    job = Job(kind, work)
    job.gate = gate
    return job


def test_signals_arrive_in_order_in_the_gui_thread(qtbot):
    events = []
    gui = threading.get_ident()

    def work(job: Job):
        job.report("stage", 0.5, "half")
        job.emit([1, 2])
        return "result"

    job = Job("load", work)
    job.progress.connect(lambda *a: events.append(("progress", a, threading.get_ident())))
    job.partial.connect(lambda v: events.append(("partial", v, threading.get_ident())))
    job.succeeded.connect(lambda v: events.append(("succeeded", v, threading.get_ident())))
    with qtbot.waitSignal(job.done, timeout=5000):
        job.start()
    assert [e[0] for e in events] == ["progress", "partial", "succeeded"]
    assert events[0][1] == ("stage", 0.5, "half") and events[2][1] == "result"
    assert {e[2] for e in events} == {gui}
    assert not job.running and job.finished


def test_errors_arrive_as_exceptions_and_the_text_is_made_in_one_place(qtbot, caplog):
    bad = InputError("/data/science.fits", "not a FITS file")
    job = Job("load", lambda job: (_ for _ in ()).throw(bad))
    with qtbot.waitSignal(job.failed, timeout=5000) as sig:
        job.start()
    assert sig.args[0] is bad and job.error is bad
    assert error_text(bad) == "/data/science.fits: not a FITS file"
    bug = Job("rescore", lambda job: 1 / 0)
    with qtbot.waitSignal(bug.failed, timeout=5000) as sig:
        bug.start()
    assert isinstance(sig.args[0], ZeroDivisionError)
    assert error_text(sig.args[0]).startswith(
        "unexpected ZeroDivisionError: division by zero (this is a bug in diascan")
    assert "rescore job failed" in caplog.text  # a bug keeps its traceback in the log


def test_a_cancelled_job_never_delivers(qtbot):
    job = gated("rescore", result="late")
    got = []
    job.succeeded.connect(got.append)
    with qtbot.waitSignals([job.cancelled, job.done], timeout=5000):
        job.start()
        job.cancel()
        job.gate.set()  # the function may finish; its result is dropped
    assert got == []


def test_one_keep_alive_set_holds_jobs_until_done(qtbot):
    done = []
    job = Job("checksum", lambda job: 42)
    job.succeeded.connect(done.append)
    job.start()
    assert job in qt_jobs._ALIVE
    del job  # only the keep-alive set holds it now
    qtbot.waitUntil(lambda: done == [42], timeout=5000)
    qtbot.waitUntil(lambda: not any(j.kind == "checksum" for j in qt_jobs._ALIVE), timeout=5000)


def test_a_rescore_waits_for_the_load_and_is_built_on_its_data(qtbot):
    jobs = QtJobs()
    log: list[str] = []
    load = jobs.run(gated("load", "data", log))
    built = []

    def build():
        built.append(jobs.busy("load"))  # made when it can start: after the load
        return Job("rescore", lambda job: "scores")

    assert jobs.request("rescore", build) is None and jobs.busy("rescore")
    assert built == []
    with qtbot.waitSignal(jobs.finished, timeout=5000, check_params_cb=lambda j: j.kind ==
                          "rescore"):
        load.gate.set()
    assert built == [False] and not load.is_cancelled


def test_a_rescore_replaces_a_rescore_and_a_load_cancels_them(qtbot):
    jobs = QtJobs()
    first = jobs.run(gated("rescore"))
    second = gated("rescore", "second")
    results = []
    second.succeeded.connect(results.append)
    assert jobs.request("rescore", lambda: second) is None  # waits for the first to stop
    assert first.is_cancelled
    with qtbot.waitSignal(second.succeeded, timeout=5000):
        qtbot.waitUntil(lambda: second.running, timeout=5000)
        second.gate.set()
    assert results == ["second"]
    # a load cancels a running rescore and drops a waiting one
    third = jobs.run(gated("rescore"))
    load = jobs.run(gated("load"))
    assert third.is_cancelled and not load.is_cancelled
    with qtbot.waitSignal(load.done, timeout=5000):
        load.gate.set()


def test_new_data_cancel_stale_jobs_but_not_background_ones(qtbot):
    jobs = QtJobs()
    rescore = jobs.run(gated("rescore"))
    checksum = jobs.run(gated("checksum", "hashes"))
    jobs.data_changed()
    assert rescore.is_cancelled and not checksum.is_cancelled
    jobs.cancel_all()  # the Cancel button, closing the window
    assert not checksum.is_cancelled
    with qtbot.waitSignal(checksum.succeeded, timeout=5000) as sig:
        checksum.gate.set()
    assert sig.args[0] == "hashes"
    assert jobs.wait_idle(5000)
