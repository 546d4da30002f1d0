"""`higgs voice ...`: manage the library of voice profiles. Commands parse, call the library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from higgs_cli.cli.factory import make_app
from higgs_cli.cli.options import (
    AsrModelOption,
    DeviceOption,
    JsonFlag,
    ModelOption,
    QuietFlag,
    RevisionOption,
    ValidationFractionOption,
)
from higgs_cli.cli.output import out
from higgs_cli.errors import UsageError
from higgs_cli.voices.library import Voice, VoiceLibrary

app = make_app("voice", help="Manage the library of voice profiles.")

Name = Annotated[str, typer.Argument(metavar="NAME", help="Voice name: lowercase letters, digits, '-' and '_'.",
                                          show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Replace a voice that already has this name.")]


def _show(voice: Voice, console: Console) -> None:
    console.print(Text.assemble((voice.name, "bold"), f"  {voice.duration:.1f} s  added {voice.created}"))
    if voice.description:
        console.print(f"  description: {voice.description}")
    console.print(f"  transcript:  {voice.transcript}")
    console.print(f"  audio:       {voice.audio_path}")
    from higgs_cli.voices.adapter import describe, find_adapter, sparkline

    adapter = find_adapter(voice.path)
    if adapter is not None:  # a trained LoRA adapter (`higgs voice train`) and its curves
        info = describe(adapter)
        console.print(f"  adapter:     {info['digest'][:12]}  rank {info.get('rank')}  alpha {info.get('alpha')}  "
                      f"{info.get('steps_done', '?')} steps, trained {info.get('trained', '?')}")
        for label, key in (("loss", "loss_curve"), ("validation", "validation_curve")):
            curve = [value for _, value in info.get(key) or []]
            if curve:
                console.print(f"  {label + ':':<12} {curve[0]:.3f} {sparkline(curve)} {curve[-1]:.3f}")


@app.command()
def add(
    name: Name,
    audio: Annotated[Path, typer.Argument(metavar="AUDIO", help="Reference recording (WAV, FLAC, OGG, MP3, M4A).",
                                          show_default=False)],
    transcript: Annotated[str | None, typer.Option("--transcript", "-t",
                                                   help="The exact words spoken in the recording.")] = None,
    transcript_file: Annotated[Path | None, typer.Option("--transcript-file",
                                                         help="Read the transcript from this text file.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d",
                                                    help="Notes on the voice, e.g. 'warm, British'.")] = None,
    trim: Annotated[bool, typer.Option("--trim", help="Cut silence from the start and end.")] = False,
    force: Force = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Add a voice from a recording of one speaker and its transcript: 3-30 s clones best; 0.5-60 s is
    accepted, with a warning outside 3-30 s."""
    if (transcript is None) == (transcript_file is None):
        raise UsageError("give the transcript with exactly one of --transcript or --transcript-file")
    if transcript_file is not None:
        from higgs_cli.storage.files import read_text  # a path, or an s3:// URL

        try:
            transcript = read_text(transcript_file, what="transcript file")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read transcript file {transcript_file}: {error}") from None
    voice = VoiceLibrary().add(name, audio, transcript or "", description=description, trim=trim, force=force)
    from higgs_cli.voices.reference import length_advice

    advice = length_advice(voice.duration)
    if advice:
        out.warn(advice)
    out.result(voice.to_dict(), lambda console: console.print(
        Text.assemble("added voice ", (voice.name, "bold"), f" ({voice.duration:.1f} s)")))


@app.command("list")
def list_(json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List the voices in the library."""
    voices, skipped = VoiceLibrary().scan()
    for folder in skipped:
        out.warn(f"skipped {folder.path}: {folder.reason}")

    def human(console: Console) -> None:
        if not voices:
            console.print("no voices yet; add one with `higgs voice add NAME AUDIO --transcript TEXT`")
            return
        table = Table("name", "seconds", "description", "transcript", box=None)
        for voice in voices:
            text = voice.transcript if len(voice.transcript) <= 60 else voice.transcript[:57] + "..."
            table.add_row(voice.name, f"{voice.duration:.1f}", voice.description or "", text)
        console.print(table)

    out.result({"voices": [voice.to_dict() for voice in voices],
                "skipped": [{"path": str(folder.path), "reason": folder.reason} for folder in skipped]}, human)


@app.command()
def show(name: Name, json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Show one voice: transcript, description, length, where its audio is."""
    from higgs_cli.voices.adapter import describe, find_adapter

    voice = VoiceLibrary().get(name)
    adapter = find_adapter(voice.path)
    out.result({**voice.to_dict(), "adapter": describe(adapter) if adapter else None},
               lambda console: _show(voice, console))


@app.command()
def remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm: removing cannot be undone.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Delete a voice from the library."""
    library = VoiceLibrary()
    library.get(name)  # a voice that does not exist is said before --yes is asked for
    if not yes:
        raise UsageError(f"removing voice '{name}' cannot be undone", hint="add --yes to confirm")
    library.remove(name)
    out.result({"removed": name}, lambda console: console.print(Text.assemble("removed voice ", (name, "bold"))))


@app.command()
def rename(
    old: Annotated[str, typer.Argument(metavar="OLD", help="The current name.", show_default=False)],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The new name.", show_default=False)],
    force: Force = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Give a voice a new name."""
    voice = VoiceLibrary().rename(old, new, force=force)
    out.result({"renamed": old, **voice.to_dict()}, lambda console: console.print(
        Text.assemble(f"renamed voice {old} to ", (voice.name, "bold"))))


@app.command("export")
def export(
    archive: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="Archive to write: .tar.gz, .tgz or .zip.",
                                            show_default=False)],
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME", help="Voices to export (default: all).",
                                                      show_default=False)] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Pack voices into one archive to share or back up."""
    voices = VoiceLibrary().export(names or None, archive)
    exported = [voice.name for voice in voices]
    out.result({"archive": str(archive), "voices": exported}, lambda console: console.print(
        f"exported {len(exported)} voice(s) to {archive}: {', '.join(exported)}"))


@app.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="An archive made by `higgs voice export`.",
                                            show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace voices that already have these names.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Install the voices in an archive; nothing is installed if any of them is bad."""
    voices = VoiceLibrary().import_archive(archive, force=force)
    imported = [voice.name for voice in voices]
    out.result({"archive": str(archive), "voices": [voice.to_dict() for voice in voices]},
               lambda console: console.print(f"imported {len(imported)} voice(s): {', '.join(imported)}"))


@app.command()
def prepare(
    name: Name,
    data: Annotated[Path, typer.Argument(metavar="DATA", show_default=False, help=(
        "A folder of audio files with same-named .txt transcripts, a CSV/TSV/JSONL sheet (audio, text), "
        "or a recording without a transcript (cut and transcribed with --asr-model)."))],
    validation_fraction: ValidationFractionOption = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Chooses the validation clips: same seed, same split.")] = 0,
    asr_model: AsrModelOption = None,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Check, cut and encode training data for voice NAME, and show what is kept and what is dropped
    and why (what `higgs voice train` trains on). NAME need not be in the library yet; the audio codes
    are cached (by content) in the user cache folder, so training never encodes them again."""
    from higgs_cli.cli.progress import SESSION_NOTES
    from higgs_cli.sessions import SessionSpec, open_session
    from higgs_cli.training.data import LazyRecognizer
    from higgs_cli.voices.meta import check_name

    check_name(name)
    spec = SessionSpec(model=model, revision=revision, device=device, no_server=True)  # the codec runs here
    session = open_session(spec, lazy=True, notes=SESSION_NOTES)
    recognizer = LazyRecognizer(asr_model, device) if asr_model else None
    prepared = prepare_training_data(data, session, validation_fraction=validation_fraction, seed=seed,
                                     recognizer=recognizer)
    show_prepared(name, data, prepared, session)


def prepare_training_data(data: Path, session, **settings):
    """`training.data.prepare_data` into the user's codes cache, with a bar over the recordings
    (`voice prepare`, and `voice train` before it trains)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from higgs_cli.home import training_codes_dir
    from higgs_cli.training.data import prepare_data

    if not out.show_progress:
        return prepare_data(data, session, cache_dir=training_codes_dir(), **settings)
    with Progress(TextColumn("preparing {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=out.err, transient=True) as bar:
        task = bar.add_task(str(data), total=None)
        return prepare_data(data, session, cache_dir=training_codes_dir(),
                            progress=lambda done, total: bar.update(task, completed=done, total=total), **settings)


def show_prepared(name: str, data: Path, prepared, session) -> None:
    """Print what preparation kept and dropped: the dropped clips' table and a summary (JSON: the
    report, the digest and the session), its warnings as warnings."""
    from higgs_cli.sessions import describe_session

    report = prepared.report
    for warning in report.warnings:
        out.warn(warning)

    def human(console: Console) -> None:
        if report.dropped:
            table = Table("dropped clip", "why", box=None)
            for source, reason in report.table():
                table.add_row(source, reason)
            console.print(table)
        console.print(Text.assemble((name, "bold"), ": ", report.summary()))

    out.result({"voice": name, "data": str(data), "digest": prepared.digest, **report.to_dict(),
                "session": describe_session(session)}, human)
