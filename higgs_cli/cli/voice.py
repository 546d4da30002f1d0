"""`higgs voice ...`: manage the library of voice profiles. Commands parse, call the library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from higgs_cli.cli.output import out
from higgs_cli.errors import UsageError
from higgs_cli.voices.library import Voice, VoiceLibrary

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

Name = Annotated[str, typer.Argument(metavar="NAME", help="Voice name: lowercase letters, digits, '-' and '_'.",
                                          show_default=False)]
Force = Annotated[bool, typer.Option("--force", help="Replace a voice that already has this name.")]


def _show(voice: Voice, console: Console) -> None:
    console.print(f"[bold]{voice.name}[/]  {voice.duration:.1f} s  added {voice.created}", highlight=False)
    if voice.description:
        console.print(f"  description: {escape(voice.description)}", highlight=False)
    console.print(f"  transcript:  {escape(voice.transcript)}", highlight=False)
    console.print(f"  audio:       {escape(str(voice.audio_path))}", highlight=False)


@app.command()
def add(
    name: Name,
    audio: Annotated[Path, typer.Argument(metavar="AUDIO", help="Reference recording (WAV, FLAC, OGG, MP3).",
                                          show_default=False)],
    transcript: Annotated[str | None, typer.Option("--transcript", "-t",
                                                   help="The exact words spoken in the recording.")] = None,
    transcript_file: Annotated[Path | None, typer.Option("--transcript-file",
                                                         help="Read the transcript from this text file.")] = None,
    description: Annotated[str | None, typer.Option("--description", "-d",
                                                    help="Notes on the voice, e.g. 'warm, British'.")] = None,
    trim: Annotated[bool, typer.Option("--trim", help="Cut silence from the start and end.")] = False,
    force: Force = False,
) -> None:
    """Add a voice from a 3-30 s recording of one speaker and its transcript."""
    if (transcript is None) == (transcript_file is None):
        raise UsageError("give the transcript with exactly one of --transcript or --transcript-file")
    if transcript_file is not None:
        try:
            transcript = transcript_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read transcript file {transcript_file}: {error}") from None
    voice = VoiceLibrary().add(name, audio, transcript or "", description=description, trim=trim, force=force)
    out.result(voice.to_dict(), lambda console: console.print(
        f"added voice [bold]{voice.name}[/] ({voice.duration:.1f} s)", highlight=False))


@app.command("list")
def list_() -> None:
    """List the voices in the library."""
    voices, skipped = VoiceLibrary().scan()
    for folder in skipped:
        out.warn(escape(f"skipped {folder.path}: {folder.reason}"))

    def human(console: Console) -> None:
        if not voices:
            console.print("no voices yet; add one with `higgs voice add NAME AUDIO --transcript TEXT`",
                          highlight=False)
            return
        table = Table("name", "seconds", "description", "transcript", box=None)
        for voice in voices:
            text = voice.transcript if len(voice.transcript) <= 60 else voice.transcript[:57] + "..."
            table.add_row(voice.name, f"{voice.duration:.1f}", escape(voice.description or ""), escape(text))
        console.print(table)

    out.result({"voices": [voice.to_dict() for voice in voices],
                "skipped": [{"path": str(folder.path), "reason": folder.reason} for folder in skipped]}, human)


@app.command()
def show(name: Name) -> None:
    """Show one voice: transcript, description, length, where its audio is."""
    voice = VoiceLibrary().get(name)
    out.result(voice.to_dict(), lambda console: _show(voice, console))


@app.command()
def remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm: removing cannot be undone.")] = False,
) -> None:
    """Delete a voice from the library."""
    if not yes:
        raise UsageError(f"removing voice '{name}' cannot be undone", hint="add --yes to confirm")
    VoiceLibrary().remove(name)
    out.result({"removed": name}, lambda console: console.print(f"removed voice [bold]{name}[/]", highlight=False))


@app.command()
def rename(
    old: Annotated[str, typer.Argument(metavar="OLD", help="The current name.", show_default=False)],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The new name.", show_default=False)],
    force: Force = False,
) -> None:
    """Give a voice a new name."""
    voice = VoiceLibrary().rename(old, new, force=force)
    out.result({"renamed": old, **voice.to_dict()}, lambda console: console.print(
        f"renamed voice {old} to [bold]{voice.name}[/]", highlight=False))


@app.command("export")
def export(
    archive: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="Archive to write: .tar.gz, .tgz or .zip.",
                                            show_default=False)],
    names: Annotated[list[str] | None, typer.Argument(metavar="NAME", help="Voices to export (default: all).",
                                                      show_default=False)] = None,
) -> None:
    """Pack voices into one archive to share or back up."""
    voices = VoiceLibrary().export(names or None, archive)
    exported = [voice.name for voice in voices]
    out.result({"archive": str(archive), "voices": exported}, lambda console: console.print(
        f"exported {len(exported)} voice(s) to {escape(str(archive))}: {', '.join(exported)}", highlight=False))


@app.command("import")
def import_(
    archive: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="An archive made by `higgs voice export`.",
                                            show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace voices that already have these names.")] = False,
) -> None:
    """Install the voices in an archive; nothing is installed if any of them is bad."""
    voices = VoiceLibrary().import_archive(archive, force=force)
    imported = [voice.name for voice in voices]
    out.result({"archive": str(archive), "voices": [voice.to_dict() for voice in voices]},
               lambda console: console.print(f"imported {len(imported)} voice(s): {', '.join(imported)}",
                                             highlight=False))
