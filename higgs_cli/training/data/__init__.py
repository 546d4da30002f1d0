"""Preparing a voice's training data (`higgs voice prepare`, the data half of `higgs voice train`).

    data = prepare_data("recordings/", session, cache_dir=training_codes_dir())
    data.train, data.validation   # Examples: transcript and (frames, codebooks) codes
    data.report.table()           # every dropped clip and why; .summary(), .to_dict()
    data.digest                   # names this exact data in a training manifest

Rooms, each importing only those before it: `report` (kept and dropped), `sources` (what DATA
names: a folder, a sheet, a recording), `clips` (24 kHz mono, trimming, cutting at pauses, the
checks), `recognition` (the guards' speech recognition), `encoding` (the content-addressed codes
cache), `examples` (Example, the split, the digest), `prepare` (all of it in order). Torch-free.
"""

from higgs_cli.training.data.examples import Example, PreparedData
from higgs_cli.training.data.prepare import prepare_data
from higgs_cli.training.data.recognition import LazyRecognizer, Recognizer
from higgs_cli.training.data.report import Dropped, PrepareReport

__all__ = ["Dropped", "Example", "LazyRecognizer", "PrepareReport", "PreparedData", "Recognizer", "prepare_data"]
