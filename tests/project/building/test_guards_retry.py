"""Retries inside the render's generation loop (project/building/generate.py): a flagged line is generated
again with a derived seed, batched with the next call, and its best try is kept."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_cli.engine.request import FRAME_RATE, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building.generate import PendingLine, generate_missing, retry_seed
from higgs_cli.project.building.guards import LineChecker

HOP = SAMPLE_RATE // FRAME_RATE
TEXTS = ["This is the first line of the story.", "And this is the second one, a little longer.",
         "The third line ends it."]


class Session:
    """Returns a clean line (the right length for its text) unless `bad(request)` says otherwise:
    then a line the model never ended (max_frames long), or `bad` names another kind."""

    def __init__(self, bad):
        self.bad = bad
        self.calls: list[list[tuple[str, int]]] = []  # (text, seed) of each generate() call

    def generate(self, requests, *, batch_size=8, progress=None):
        self.calls.append([(r.text, r.seed) for r in requests])
        out = []
        for r in requests:
            kind = self.bad(r)
            frames = r.max_frames if kind == "unfinished" else max(1, int(len(r.text) / 15 * FRAME_RATE))
            if kind == "short":
                frames = 2
            rng = np.random.default_rng(r.seed)
            codes = rng.integers(0, 1024, size=(8, frames))
            audio = (0.3 * rng.uniform(-1, 1, frames * HOP)).astype(np.float32)
            out.append(GenerationResult(codes=codes, audio=audio, finished=kind != "unfinished"))
            if progress is not None:
                progress(frames)
        return out


class Progress:
    def __init__(self):
        self.expected = []
        self.frames_seen = 0

    def frames(self, n):
        self.frames_seen += n

    def expect(self, seconds):
        self.expected.append(seconds)


class Sink:
    """The render's side of the loop: fixed requests out, kept results in (each once)."""

    def __init__(self, requests):
        self.requests = requests
        self.kept: dict[int, tuple[GenerationResult, object]] = {}

    def request(self, pending):
        return self.requests[pending.index]

    def done(self, pending, result, report):
        assert pending.index not in self.kept, "done is called once per line"
        self.kept[pending.index] = (result, report)


def run(session, *, retries=2, guards=None, checker=None, depends=None, texts=TEXTS, batch_size=8,
        sampling=None):
    requests = [GenerationRequest(text=t, seed=10 + i, max_frames=250, **({"sampling": sampling} if sampling else {}))
                for i, t in enumerate(texts)]
    sink = Sink(requests)
    depends = depends or [()] * len(texts)
    lines = [PendingLine(i, after=depends[i], retries=retries, seconds=len(t) / 15) for i, t in enumerate(texts)]
    progress = Progress()
    stats = generate_missing(session, lines, sink, batch_size=batch_size, progress=progress,
                             checks=lambda: checker or LineChecker(guards))
    return stats, sink.kept, progress


def test_a_flagged_line_is_retried_with_a_derived_seed_in_the_next_call():
    session = Session(lambda r: "unfinished" if r.text == TEXTS[1] and r.seed == 11 else None)
    stats, done, _ = run(session)
    # call 1: all three; call 2: line 1 again, with its first retry seed
    assert session.calls == [[(TEXTS[0], 10), (TEXTS[1], 11), (TEXTS[2], 12)], [(TEXTS[1], retry_seed(11, 1))]]
    result, report = done[1]
    assert result.finished and report.tries == 2 and report.flags == [] and report.seed == retry_seed(11, 1)
    assert all(done[i][1].tries == 1 and done[i][1].seed == 10 + i for i in (0, 2))
    assert stats.retried == [1] and stats.flagged == [] and stats.generated == {0, 1, 2}
    assert stats.reports[1] is report


def test_retry_seeds_are_deterministic_distinct_and_in_range():
    seeds = [retry_seed(s, k) for s in range(50) for k in (1, 2, 3)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**32 for s in seeds)
    assert retry_seed(7, 0) == 7 and retry_seed(7, 2) == retry_seed(7, 2)


def test_out_of_retries_the_mildest_try_is_kept_with_its_flags():
    # try 0 never ends (weight 3), try 1 is too short (2), try 2 never ends again
    first, second = retry_seed(11, 1), retry_seed(11, 2)
    kinds = {11: "unfinished", first: "short", second: "unfinished"}
    session = Session(lambda r: kinds.get(r.seed) if r.text == TEXTS[1] else None)
    stats, done, _ = run(session, retries=2)
    result, report = done[1]
    assert report.tries == 3 and report.seed == first and result.frames == 2
    assert [f["code"] for f in report.flags] == ["too_short"]
    assert len(session.calls) == 3 and stats.flagged == [1] and stats.retried == [1]
    assert stats.seconds == sum(done[i][0].seconds for i in done)  # kept audio only
    assert stats.tried_seconds > stats.seconds


def test_a_retry_shares_a_call_with_lines_that_became_ready():
    # line 2 hears line 0, whose first try is flagged: line 2 waits for the retry
    session = Session(lambda r: "unfinished" if r.seed == 10 else None)
    stats, done, _ = run(session, depends=[(), (), (0,)])
    assert session.calls[0] == [(TEXTS[0], 10), (TEXTS[1], 11)]
    assert session.calls[1] == [(TEXTS[0], retry_seed(10, 1))]
    assert session.calls[2] == [(TEXTS[2], 12)]
    # with two lines flagged at once, both retries go in one call, before new lines
    session = Session(lambda r: "unfinished" if r.seed in (10, 11) else None)
    run(session, depends=[(), (), (0,)])
    assert session.calls[1] == [(TEXTS[0], retry_seed(10, 1)), (TEXTS[1], retry_seed(11, 1))]
    assert session.calls[2] == [(TEXTS[2], 12)]


def test_clean_lines_behave_as_before():
    session = Session(lambda r: None)
    stats, done, progress = run(session)
    assert session.calls == [[(t, 10 + i) for i, t in enumerate(TEXTS)]]
    assert all(report.tries == 1 and report.flags == [] for _, report in done.values())
    assert progress.expected[-1] == pytest.approx(stats.seconds)  # the estimate ends at what was made


def test_zero_retries_and_disabled_guards():
    bad = lambda r: "unfinished"  # noqa: E731
    session = Session(bad)
    _, done, _ = run(session, retries=0)
    assert len(session.calls) == 1 and all(report.flags[0]["code"] == "unfinished" for _, report in done.values())
    session = Session(bad)
    _, done, _ = run(session, guards=GuardSettings(enabled=False))
    assert len(session.calls) == 1 and all(report.flags == [] for _, report in done.values())


def test_a_fake_checker_forces_a_retry():
    # a checker that wants the second try of line 0, whatever the audio (e.g. speech recognition)
    seen = []

    def plugin_checks(line, request, result):
        seen.append((line.display_text, request.seed))
        return [{"code": "asr", "message": "heard nothing"}] if request.seed == 10 else []

    session = Session(lambda r: None)
    _, done, progress = run(session, checker=LineChecker(GuardSettings(), plugin_checks=plugin_checks))
    assert done[0][1].tries == 2 and done[0][1].seed == retry_seed(10, 1) and done[0][1].flags == []
    assert seen[0] == (TEXTS[0], 10) and (TEXTS[0], retry_seed(10, 1)) in seen
    # the expected audio grew by the retry, and ends at every try's audio
    assert progress.frames_seen / FRAME_RATE == pytest.approx(progress.expected[-1])


def test_a_flagged_render_is_deterministic():
    bad = lambda r: "unfinished" if r.seed % 3 == 0 else None  # noqa: E731
    first = run(Session(bad))[1]
    second = run(Session(bad), batch_size=1)[1]
    def kept(done):
        return {i: (report.seed, report.tries) for i, (_, report) in done.items()}

    assert kept(first) == kept(second)
    assert all(np.array_equal(first[i][0].codes, second[i][0].codes) for i in first)


def test_a_greedy_line_is_flagged_but_not_retried():
    """At temperature 0 the seed changes nothing: another try would cost a generation for the same codes."""
    from higgs_cli.engine.request import Sampling

    session = Session(lambda r: "unfinished" if r.text == TEXTS[1] else None)
    stats, done, _ = run(session, sampling=Sampling(temperature=0))
    assert len(session.calls) == 1
    result, report = done[1]
    assert report.tries == 1 and [f["code"] for f in report.flags] == ["unfinished"] and stats.flagged == [1]
