"""Options shared by several commands: one definition, one wording, one default each.

Sampling defaults and ranges come from `higgs_cli.engine.request` (`Sampling`,
`SAMPLING_RANGES`, `DEFAULT_*`); the help texts here never restate a number
that lives there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.output import set_json, set_quiet
from higgs_cli.engine.checkpoint import DEFAULT_MODEL, MODEL_ENV
from higgs_cli.engine.request import Sampling
from higgs_cli.sessions.env import SERVER_ENV

SAMPLING = Sampling()

JSON_HELP = "Print the result (or the error) as one JSON document on stdout; no progress, no notes."
QUIET_HELP = "Print only results and errors: no progress, no notes."

# --json and -q work before the noun (`higgs --json voice list`) and on each command
# (`higgs voice list --json`). They only switch the output on; `main` resets it per run.
JsonFlag = Annotated[bool, typer.Option("--json", help=JSON_HELP, callback=set_json, expose_value=False)]
QuietFlag = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP, callback=set_quiet, expose_value=False)]

ModelOption = Annotated[Optional[str], typer.Option(  # $HIGGS_MODEL is read by engine.checkpoint alone
    "--model", "-m", show_default=False,
    help=f"Hub repo id or local checkpoint folder [default: ${MODEL_ENV}, then a project's model:, "
         f"then {DEFAULT_MODEL}].")]
RevisionOption = Annotated[Optional[str], typer.Option(
    "--revision", show_default=False, help="Hub revision (branch, tag or commit), for reproducible results.")]
DeviceOption = Annotated[Optional[str], typer.Option(
    "--device", show_default=False, help="cpu, cuda, cuda:N or mps [default: the best there is].")]
CompileOption = Annotated[bool, typer.Option(
    "--compile", help="Compile the decode step (CUDA graphs on GPU; on CPU an ahead-of-time batch-1 step and "
                      "inductor kernels): a slower first start (about a minute on CPU, then cached under "
                      "$HIGGS_HOME/compiled), then faster decoding.")]
BatchSizeOption = Annotated[int, typer.Option(
    "--batch-size", "-b", min=1, help="Lines generated together (more is faster, uses more memory).")]

SeedOption = Annotated[int, typer.Option("--seed", help="Random seed: same seed, same audio.")]
TemperatureOption = Annotated[float, typer.Option(
    "--temperature", help="Sampling temperature. 0 picks the likeliest code (greedy), but while RAS is on "
                          "(--ras-window above 0) a code repeated too often is still redrawn at random, as "
                          "Boson's engine does: --temperature 0 --ras-window 0 is fully greedy.")]
TopKOption = Annotated[Optional[int], typer.Option(
    "--top-k", show_default=False, help="Sample from the K likeliest codes [default: all].")]
TopPOption = Annotated[float, typer.Option("--top-p", help="Nucleus sampling: the probability mass kept.")]
RasWindowOption = Annotated[int, typer.Option(
    "--ras-window", help="Repetition-aware sampling: how many recent frames to look at; 0 turns RAS off.")]
RasMaxRepeatOption = Annotated[int, typer.Option(
    "--ras-max-repeat", help="RAS: how often a code may recur in the window before it is redrawn.")]
MaxSecondsOption = Annotated[float, typer.Option("--max-seconds", help="The longest audio to generate.")]

OutputFileOption = Annotated[Path, typer.Option(
    "--output", "-o", help="Output file: .wav, .flac (or .mp3, .ogg); - writes a WAV to stdout.")]

# Where a command generates: sessions.open_session reads these (and $HIGGS_SERVER: sessions/env.py).
ServerOption = Annotated[Optional[str], typer.Option(
    "--server", show_default=False,
    help=f"Generate on a running `higgs serve` at this URL [default: ${SERVER_ENV}, then a local server "
         f"serving the model asked for, else load the model here].")]
NoServerFlag = Annotated[bool, typer.Option(
    "--no-server", help="Load the model in this process even when a server is running.")]
RayOption = Annotated[Optional[str], typer.Option(
    "--ray", metavar="ADDRESS", show_default=False,
    help="Generate on a Ray cluster: auto, HOST:PORT, ray://HOST:10001, or local (the `ray` extra; "
         "`say` with --input-file).")]
WorkersOption = Annotated[Optional[int], typer.Option(
    "--workers", show_default=False, help="With --ray: Ray workers, each holding one model [default: one per GPU].")]


# training data, shared by `voice prepare` and `voice train`
ValidationFractionOption = Annotated[float, typer.Option(
    "--validation-fraction", min=0.0, max=0.9, help="Share of the clips held out for validation.")]
AsrModelOption = Annotated[Optional[str], typer.Option("--asr-model", show_default=False, help=(
    "A local Whisper checkpoint (folder, or a name in the local Hugging Face cache): transcribes "
    "recordings without transcripts and drops clips whose transcript does not match."))]
