"""The speech commands: ``speak`` and ``say`` (a line to a WAV, with its mouth cues) and ``lipsync`` (Rhubarb Lip
Sync's command line on the pack's engines)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from .cli_common import _emit, _input_error
from .common.errors import AnimStudioError

log = logging.getLogger("animstudio")


def cmd_lipsync(args) -> int:
    """Rhubarb Lip Sync's command line, on the pack's engines: JSON on stdout unless -o is given.

    ``--language`` (an espeak-ng code) other than English aligns the dialogue text with espeak-ng's phones
    for it (DTW), since the recognisers know English only.
    """
    from .nodes.audio.clip import read_audio
    from .nodes.lipsync.engine import check_language, is_english, lipsync_audio
    from .nodes.lipsync.errors import LipSyncError

    language = (args.language or "en").strip() or "en"
    if not is_english(language):
        try:
            check_language(language)
        except LipSyncError as exc:
            raise _input_error(str(exc)) from None
    audio_path = Path(args.audio)
    try:
        audio = read_audio(audio_path)  # a sound file, or the sound of a video
        dialog = Path(args.dialogFile).read_text(encoding="utf-8") if args.dialogFile else None
    except FileNotFoundError as exc:
        raise _input_error(f"{exc.filename or audio_path}: file not found") from None
    except ValueError as exc:
        raise _input_error(str(exc)) from None
    except (OSError, RuntimeError) as exc:  # soundfile raises RuntimeError subclasses for unreadable audio
        raise AnimStudioError(f"cannot read {exc.filename if getattr(exc, 'filename', None) else audio_path}: {exc}") from None
    try:
        cues = lipsync_audio(audio, dialog, args.engine, args.extendedShapes, sound_file=str(audio_path.resolve()),
                             language=language)
    except LipSyncError as exc:
        raise AnimStudioError(f"lip sync failed: {exc}") from None
    text = _cues_text(cues, args.exportFormat, args.datFrameRate, args.datUsePrestonBlair)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for note in cues.notes:
        log.warning("%s", note)
    return 0


def _cues_text(cues, export_format: str, dat_frame_rate: int = 24, preston_blair: bool = False) -> str:
    from .nodes.lipsync.formats import write_cues
    from .nodes.lipsync.visemes import to_viseme_json

    if export_format == "visemes":
        return to_viseme_json(cues)
    if export_format == "dat":
        return write_cues(cues, "dat", frame_rate=dat_frame_rate, prestonBlair=preston_blair)
    return write_cues(cues, export_format)


def cmd_speak(args) -> int:
    from .nodes.audio.clip import write_wav
    from .nodes.audio.tts import TTSError, VoiceSettings, synthesize

    voice = VoiceSettings(args.engine, args.voice, args.language, args.rate, args.pitch, args.emotion,
                          args.server_url, args.model)
    try:
        speech = synthesize(args.text, voice)
    except TTSError as exc:
        raise _input_error(f"cannot speak: {exc}") from None
    write_wav(speech.audio, args.output)
    for note in speech.notes:
        print(f"note: {note}", file=sys.stderr)
    _emit(args, {"ok": True, "file": args.output, "seconds": round(speech.audio.seconds, 3),
                 "sample_rate": speech.audio.sample_rate, "notes": list(speech.notes)},
          f"wrote {args.output}: {speech.audio.seconds:.2f} s at {speech.audio.sample_rate} Hz")
    return 0


def cmd_say(args) -> int:
    """Speak a line to a WAV and, with ``--cues``, write its mouth cues from the voice's own phoneme events.

    The cues need no recognition: the voice reports every phone it spoke and when, in any language it
    speaks. An engine that reports none (a cloned or server voice) is lip-synced from the audio instead.
    """
    from .nodes.audio.clip import write_wav
    from .nodes.audio.tts import TTSError, VoiceSettings, synthesize
    from .nodes.lipsync.engine import lipsync_audio
    from .nodes.lipsync.errors import LipSyncError

    language = (args.language or "en").strip() or "en"
    voice = VoiceSettings(args.engine, args.voice, language, args.rate, args.pitch, args.emotion)
    try:
        speech = synthesize(args.text, voice)
    except TTSError as exc:
        raise _input_error(f"cannot say it: {exc}") from None
    output = Path(args.output)
    write_wav(speech.audio, output)
    payload = {"ok": True, "file": str(output), "seconds": round(speech.audio.seconds, 3),
               "sample_rate": speech.audio.sample_rate, "phones": len(speech.phones), "notes": list(speech.notes)}
    if args.cues:
        cues_path = Path(args.cues)
        fmt = {"txt": "tsv"}.get(cues_path.suffix.lower().lstrip("."), cues_path.suffix.lower().lstrip("."))
        if fmt not in ("json", "tsv", "dat", "xml"):
            fmt = "json"
        try:
            cues = lipsync_audio(speech.audio, speech.text or args.text, "auto", args.extendedShapes,
                                 sound_file=str(output.resolve()), language=language,
                                 phones=list(speech.phones), phone_set=speech.phone_set)
        except LipSyncError as exc:
            raise AnimStudioError(f"lip sync failed: {exc}") from None
        cues_path.write_text(_cues_text(cues, fmt, args.datFrameRate), encoding="utf-8")
        payload.update(cues=str(cues_path), cue_count=len(cues.cues), cue_engine=cues.engine)
    for note in speech.notes:
        print(f"note: {note}", file=sys.stderr)
    _emit(args, payload, f"wrote {output}: {speech.audio.seconds:.2f} s at {speech.audio.sample_rate} Hz"
          + (f"; mouth cues in {args.cues} ({payload['cue_engine']})" if args.cues else ""))
    return 0


def add_speech_commands(sub) -> None:
    p = sub.add_parser("lipsync", help="mouth cues for a recording, like Rhubarb Lip Sync's command line")
    p.add_argument("audio", help="speech recording (WAV, FLAC, OGG)")
    p.add_argument("-d", "--dialogFile", help="text file with what is said (improves timing)")
    p.add_argument("-f", "--exportFormat", default="json", choices=["json", "tsv", "dat", "xml", "visemes"],
                   help="output format (default json)")
    p.add_argument("--extendedShapes", default="GHX", help="extended shapes the mouth set has (default GHX)")
    p.add_argument("--datFrameRate", type=int, default=24, help="frame rate for -f dat (default 24)")
    p.add_argument("--datUsePrestonBlair", action="store_true", help="Preston Blair shape names in -f dat")
    p.add_argument("--engine", default="auto", choices=["auto", "rhubarb", "builtin"],
                   help="auto: the rhubarb binary if installed, else the built-in aligner")
    p.add_argument("--language", default="en",
                   help="language spoken, an espeak-ng code (en, cmn, ru, ko, it, es, de, fr, ...; default en); "
                        "other than English, the dialogue text is aligned with espeak-ng's phones for it")
    p.add_argument("-o", "--output", help="output file (default: standard output)")
    p.set_defaults(func=cmd_lipsync, json=False)

    p = sub.add_parser("speak", help="speak a line of text to a WAV file")
    p.add_argument("text")
    p.add_argument("-o", "--output", required=True, help="WAV file to write")
    p.add_argument("--engine", default="espeak")
    p.add_argument("--voice")
    p.add_argument("--language", default="en")
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--pitch", type=float, default=0.0, help="semitones")
    p.add_argument("--emotion", default="neutral")
    p.add_argument("--server-url", dest="server_url")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_speak)

    p = sub.add_parser("say", help="speak a line to a WAV and write its exact mouth cues from the voice's phonemes")
    p.add_argument("text")
    p.add_argument("-o", "--output", required=True, help="WAV file to write")
    p.add_argument("--voice", help="engine voice: an espeak-ng voice (default: the language's), a Piper .onnx, ...")
    p.add_argument("--language", default="en", help="language, an espeak-ng code (en, cmn, ru, ko, it, es, de, fr, ...)")
    p.add_argument("--engine", default="espeak", help="speech engine (default espeak)")
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--pitch", type=float, default=0.0, help="semitones")
    p.add_argument("--emotion", default="neutral")
    p.add_argument("--cues", help="mouth cue file to write; its suffix picks the format (.json, .tsv/.txt, .dat, .xml)")
    p.add_argument("--extendedShapes", default="GHX", help="extended shapes the mouth set has (default GHX)")
    p.add_argument("--datFrameRate", type=int, default=24, help="frame rate for a .dat cue file (default 24)")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_say)
